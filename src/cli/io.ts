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

/**
 * `--help` (or `-h`) given to a verb: `main` prints the verb's options instead
 * of running it. `alone`: it was the only argument. Otherwise it is most likely
 * an option meant for another program (`--exec psql -h host` without `--`):
 * nothing runs and the exit code says so.
 */
export class HelpRequested extends Error {
  constructor(
    readonly verb: string,
    readonly options: Options,
    readonly takesArguments: boolean,
    readonly alone: boolean,
  ) {
    super(`help for latchkey ${verb}`);
  }
}

/** The option lines of a verb's help: `--name VALUE` for string options, `--name` for flags. */
export function optionLines(options: Options): string[] {
  return Object.entries(options).map(([name, option]) => `  --${name}${option.type === 'string' ? ' VALUE' : ''}${option.multiple ? ' (repeatable)' : ''}`);
}

/** node:util parseArgs, with errors that say what was wrong; `--help` anywhere asks for the verb's help. */
export function parseVerbArgs(
  verb: string,
  args: string[],
  options: Options,
  allowPositionals = false,
): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  // Only the verb's own arguments: after `--` they belong to another program (`--exec psql -- -h host`).
  const end = args.indexOf('--');
  const own = end < 0 ? args : args.slice(0, end);
  if (own.includes('--help') || own.includes('-h')) throw new HelpRequested(verb, options, allowPositionals, args.length === 1);
  try {
    return parseArgs({ args, options, allowPositionals, strict: true }) as never;
  } catch (err) {
    throw new InvalidRequest(`latchkey ${verb}: ${(err as Error).message}`);
  }
}
