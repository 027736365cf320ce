import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type LatchkeyError } from '../errors.js';
import type { ProviderKind } from '../providers/provider.js';
import { configSchema, type AllowConfig, type IssuerConfig, type RawConfig } from './schema.js';

/** A target after its kind's schema accepted it. */
export interface TargetConfig {
  readonly name: string;
  readonly kind: string;
  /** `production: true|false` as written; unset, lint goes by the name. */
  readonly production?: boolean;
  /** Validated by the kind's `targetSchema`. */
  readonly settings: unknown;
}

/** A rule's allowance after its kind's schema accepted it. */
export interface AllowEntry extends Pick<AllowConfig, 'kind' | 'target' | 'require_approval'> {
  /** Seconds; the rule's `max_ttl` capped by `server.max_ttl`. */
  readonly maxTtl: number;
  /** Validated by the kind's `allowSchema`. */
  readonly settings: unknown;
}

export interface RuleEntry {
  readonly name: string;
  readonly description?: string;
  readonly issuer: string;
  readonly when: RawConfig['rules'][number]['when'];
  readonly allow: readonly AllowEntry[];
}

/** The whole configuration, validated. */
export interface Config extends Omit<RawConfig, 'targets' | 'rules'> {
  /** The file it came from, for messages. */
  readonly source: string;
  readonly targets: Readonly<Record<string, TargetConfig>>;
  readonly rules: readonly RuleEntry[];
}

const ALLOW_COMMON_KEYS = new Set(['kind', 'target', 'max_ttl', 'require_approval']);

/** Formats a zod issue path as the dotted path a user sees: `rules[2].allow[0].target`. */
export function dottedPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

/**
 * Names the configuration file in an error about it raised after validation, by
 * whatever applies a part of the file (an issuer, a target, a key file):
 * `<file>: <dotted path>: <message>`. `at` is the dotted path of that part, for
 * messages that do not start with one. An error that already names the file
 * comes back as it is.
 */
export function configErrorIn(source: string, err: LatchkeyError, at?: string): ConfigError {
  if (err instanceof ConfigError && (err.detail['source'] === source || err.message.startsWith(`${source}: `))) return err;
  const message = [source, ...(at === undefined ? [] : [at]), err.message].join(': ');
  return new ConfigError(message, { ...err.detail, source, ...(at === undefined ? {} : { path: at }) }, { cause: err });
}

function fail(source: string, problems: string[]): never {
  const list = problems.map((p) => `  - ${p}`).join('\n');
  throw new ConfigError(`invalid configuration in ${source}:\n${list}`, { source, problems });
}

function zodProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.map((issue) => `${dottedPath([...prefix, ...issue.path])}: ${issue.message}`);
}

/** Reads and validates the YAML file. Throws ConfigError naming the file and every bad path. */
export function loadConfigFile(path: string, kinds: readonly ProviderKind[]): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(err as Error).message}`);
  }
  return parseConfig(text, path, kinds);
}

/** Validates configuration text; `source` names it in errors. */
export function parseConfig(text: string, source: string, kinds: readonly ProviderKind[]): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    fail(source, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  }
  return validateConfig(doc.toJS() ?? {}, source, kinds);
}

/** Validates an already-parsed object (tests build configs in code). */
export function validateConfig(input: unknown, source: string, kinds: readonly ProviderKind[]): Config {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) fail(source, zodProblems(parsed.error));
  const raw = parsed.data;
  const problems: string[] = [];
  const kindByName = new Map(kinds.map((k) => [k.kind, k]));

  const issuerNames = new Set<string>();
  raw.issuers.forEach((issuer: IssuerConfig, i) => {
    if (issuerNames.has(issuer.name)) problems.push(`issuers[${i}].name: duplicate issuer name "${issuer.name}"`);
    issuerNames.add(issuer.name);
    const url = issuer.issuer;
    if (url && url.startsWith('http://') && !issuer.allow_insecure_http && issuer.preset !== 'dev') {
      problems.push(`issuers[${i}].issuer: expected an https:// URL (set allow_insecure_http only for tests)`);
    }
  });

  // No prototype: a name like "__proto__" or "toString" must never resolve to something.
  const targets: Record<string, TargetConfig> = Object.create(null) as Record<string, TargetConfig>;
  for (const [targetName, target] of Object.entries(raw.targets)) {
    const kind = kindByName.get(target.kind);
    if (!kind) {
      problems.push(`targets.${targetName}.kind: unknown kind "${target.kind}" (expected one of: ${[...kindByName.keys()].join(', ')})`);
      continue;
    }
    const { kind: _kind, production, ...rest } = target;
    const settings = kind.targetSchema.safeParse(rest);
    if (!settings.success) {
      problems.push(...zodProblems(settings.error, ['targets', targetName]));
      continue;
    }
    targets[targetName] = { name: targetName, kind: target.kind, ...(production === undefined ? {} : { production }), settings: settings.data };
  }

  const ruleNames = new Set<string>();
  const rules: RuleEntry[] = raw.rules.map((rule, r) => {
    if (ruleNames.has(rule.name)) problems.push(`rules[${r}].name: duplicate rule name "${rule.name}"`);
    ruleNames.add(rule.name);
    if (!issuerNames.has(rule.issuer)) {
      problems.push(`rules[${r}].issuer: unknown issuer "${rule.issuer}" (configured: ${[...issuerNames].join(', ')})`);
    }
    const allow = rule.allow.flatMap((entry, a): AllowEntry[] => {
      const at = `rules[${r}].allow[${a}]`;
      const target = targets[entry.target];
      if (!target) {
        if (!Object.hasOwn(raw.targets, entry.target)) {
          problems.push(`${at}.target: unknown target "${entry.target}" (configured: ${Object.keys(raw.targets).join(', ') || 'none'})`);
        }
        return [];
      }
      if (target.kind !== entry.kind) {
        problems.push(`${at}.kind: target "${entry.target}" is of kind "${target.kind}", not "${entry.kind}"`);
        return [];
      }
      const kind = kindByName.get(entry.kind) as ProviderKind;
      const specific = Object.fromEntries(Object.entries(entry).filter(([k]) => !ALLOW_COMMON_KEYS.has(k)));
      const settings = kind.allowSchema.safeParse(specific);
      if (!settings.success) {
        problems.push(...zodProblems(settings.error, ['rules', r, 'allow', a]));
        return [];
      }
      const maxTtl = entry.max_ttl ?? raw.server.max_ttl;
      if (maxTtl > raw.server.max_ttl) {
        problems.push(`${at}.max_ttl: ${maxTtl}s exceeds server.max_ttl (${raw.server.max_ttl}s)`);
      }
      if (maxTtl < 60) problems.push(`${at}.max_ttl: expected at least 60s, got ${maxTtl}s`);
      return [{ kind: entry.kind, target: entry.target, require_approval: entry.require_approval, maxTtl, settings: settings.data }];
    });
    return {
      name: rule.name,
      ...(rule.description === undefined ? {} : { description: rule.description }),
      issuer: rule.issuer,
      when: rule.when,
      allow,
    };
  });

  for (const [role, matches] of Object.entries(raw.roles)) {
    matches.forEach((m, i) => {
      if (!issuerNames.has(m.issuer)) problems.push(`roles.${role}[${i}].issuer: unknown issuer "${m.issuer}"`);
    });
  }

  if (problems.length > 0) fail(source, problems);
  return { ...raw, source, targets, rules };
}
