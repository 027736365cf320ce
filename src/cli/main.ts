import { isLatchkeyError } from '../errors.js';
import { withoutUrlPasswords } from '../secret.js';
import { HelpRequested, optionLines, processIO, type CliIO, type CliVerb } from './io.js';

/**
 * The `latchkey` command: one file per verb, loaded only when used so that
 * `latchkey credential-process` starts fast.
 */
const verbs: Record<string, { summary: string; load: () => Promise<CliVerb> }> = {};

export function registerVerb(name: string, summary: string, load: () => Promise<CliVerb>): void {
  verbs[name] = { summary, load };
}

function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(22)} ${v.summary}`);
  return `usage: latchkey <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  await import('./verbs.js');
  const [first, second, ...rest] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(usage());
    return first ? 0 : 2;
  }
  // Two-word verbs ("grant cert", "audit verify") first, then one-word ones.
  const two = second ? `${first} ${second}` : undefined;
  const entry = (two && verbs[two]) || verbs[first];
  if (!entry) {
    io.stderr.write(`latchkey: unknown command "${first}"\n\n${usage()}`);
    return 2;
  }
  const args = two && verbs[two] ? rest : argv.slice(1);
  try {
    const verb = await entry.load();
    return await verb(args, io);
  } catch (err) {
    if (err instanceof HelpRequested) {
      const name = two && verbs[two] ? two : first;
      const lines = [`usage: latchkey ${name} [options]${err.takesArguments ? ' [ARGUMENTS]' : ''}`, '', `  ${entry.summary}`, '', 'options:', ...optionLines(err.options)];
      if (err.alone) {
        io.stdout.write(`${lines.join('\n')}\n`);
        return 0;
      }
      io.stderr.write(`${lines.join('\n')}\n\nlatchkey: ${name}: -h/--help given with other arguments, so nothing was done; options for another program go after -- (invalid_request)\n`);
      return 2;
    }
    if (isLatchkeyError(err)) {
      io.stderr.write(`latchkey: ${err.message} (${err.code})\n${becauseLines(err)}`);
      return err.status === 400 ? 2 : 1;
    }
    throw err;
  }
}

/**
 * The underlying failure of an error the operator must act on (the database
 * refused the connection, a file could not be read), one line per level of
 * cause, with URL passwords taken out; a cause the message already says is
 * skipped. Only on the terminal: HTTP answers keep to the error's own message.
 */
function becauseLines(error: Error & { cause?: unknown }): string {
  let said = error.message;
  let lines = '';
  let cause = error.cause;
  for (let depth = 0; depth < 3 && cause instanceof Error; depth += 1, cause = cause.cause) {
    // Node reports a failed connection to a name with several addresses as an AggregateError with no message.
    const inner = cause instanceof AggregateError ? (cause.errors as unknown[]).filter((e): e is Error => e instanceof Error) : [];
    const message = cause.message || inner.map((e) => e.message).join('; ');
    if (!message || said.includes(message)) continue;
    said += `\n${message}`;
    lines += `  because: ${withoutUrlPasswords(message)}\n`;
  }
  return lines;
}
