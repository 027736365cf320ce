import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
import { InvalidRequest } from '../errors.js';

/** What a CLI verb may touch: injected so tests run verbs in-process. */
export interface CliIO {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export const processIO: CliIO = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
};

/** A verb of the `latchkey` command. Resolves to the exit code. */
export type CliVerb = (args: string[], io: CliIO) => Promise<number>;

/** node:util parseArgs, with errors that say what was wrong. */
export function parseVerbArgs(
  verb: string,
  args: string[],
  options: Options,
  allowPositionals = false,
): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true }) as never;
  } catch (err) {
    throw new InvalidRequest(`latchkey ${verb}: ${(err as Error).message}`);
  }
}
