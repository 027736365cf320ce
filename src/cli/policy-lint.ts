import { resolve } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { InvalidRequest } from '../errors.js';
import { lintPolicy } from '../policy/lint.js';
import type { ProviderKind } from '../providers/provider.js';
import { providerKinds } from '../providers/registry.js';
import { parseVerbArgs, type CliIO, type CliVerb } from './io.js';

/**
 * `latchkey policy lint [FILE]`: validates the configuration (FILE, or
 * $LATCHKEY_CONFIG) and prints every risky rule as
 * `error|warning <path> (<rule>): <message> [code]`. Exits 1 when there is an
 * error (the broker would refuse to load this policy), 0 otherwise.
 */
export function policyLintVerb(kinds: readonly ProviderKind[]): CliVerb {
  return async (args: string[], io: CliIO): Promise<number> => {
    const { positionals } = parseVerbArgs('policy lint', args, {}, true);
    if (positionals.length > 1) throw new InvalidRequest('latchkey policy lint: expected one configuration file');
    const file = positionals[0] ?? io.env.LATCHKEY_CONFIG;
    if (!file) throw new InvalidRequest('latchkey policy lint: expected a configuration file (or LATCHKEY_CONFIG)');

    const config = loadConfigFile(resolve(io.cwd, file), kinds);
    const findings = lintPolicy(config);
    for (const f of findings) io.stdout.write(`${f.severity} ${f.path} (${f.rule}): ${f.message} [${f.code}]\n`);
    const errors = findings.filter((f) => f.severity === 'error').length;
    const warnings = findings.length - errors;
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    io.stderr.write(`${file}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}\n`);
    return errors > 0 ? 1 : 0;
  };
}

export const run: CliVerb = (args, io) => policyLintVerb(providerKinds)(args, io);
