import type { ConditionConfig } from '../config/schema.js';
import type { Claims } from '../identity/types.js';
import type { ConditionFailure } from './types.js';

/**
 * Claim conditions, compiled once at load: a bare scalar or `{equals}` is
 * equality, `{glob}` an anchored glob, `{one_of}` membership, `{contains}`
 * array containment (every listed value must be present), `{not_one_of}`
 * exclusion. A missing (or null) claim fails every kind of condition,
 * `not_one_of` included: deny by default.
 */

type Scalar = string | number | boolean;

/** What `actual` holds in a failure when the token lacks the claim. */
export const MISSING = '(missing)';

/** One compiled `when` entry. */
export interface CompiledCondition {
  /** The claim it reads. */
  readonly claim: string;
  /** The condition as written in the file (reported as `expected`). */
  readonly config: ConditionConfig;
  readonly operator: 'equals' | 'glob' | 'one_of' | 'contains' | 'not_one_of';
  /** Pure test of one claim value (`undefined` when the claim is missing). */
  test(value: unknown): boolean;
  /** How the condition reads in a message: `refs/heads/main`, `a match for org/*`. */
  readonly describe: string;
}

function isScalar(value: unknown): value is Scalar {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean';
}

/**
 * Scalar equality. When the types differ (GitHub's `repository_id` is a
 * string claim, people write it as a YAML number) the string forms are
 * compared, so `123` equals `"123"` but never `"0123"`.
 */
export function scalarEquals(claim: unknown, expected: Scalar): boolean {
  if (!isScalar(claim)) return false;
  if (typeof claim === typeof expected) return claim === expected;
  return String(claim) === String(expected);
}

/**
 * Compiles a glob to an anchored RegExp: `*` matches within one path segment
 * (never `/`), `**` matches across segments; every other character is literal.
 */
export function compileGlob(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        // Runs of three or more stars mean the same as two.
        while (glob[i + 1] === '*') i++;
        source += '[\\s\\S]*';
      } else {
        source += '[^/]*';
      }
    } else {
      source += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/** A value as it reads in a message: bare strings, lists in brackets, long values cut. */
export function formatValue(value: unknown): string {
  let text: string;
  if (value === undefined || value === null) text = MISSING;
  else if (typeof value === 'string') text = value === '' ? '""' : value;
  else if (Array.isArray(value)) text = `[${value.map((v) => formatValue(v)).join(', ')}]`;
  else if (isScalar(value)) text = String(value);
  else text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/** Compiles one `when` entry. */
export function compileCondition(claim: string, config: ConditionConfig): CompiledCondition {
  if (isScalar(config) || 'equals' in config) {
    const expected = isScalar(config) ? config : config.equals;
    return { claim, config, operator: 'equals', describe: formatValue(expected), test: (v) => scalarEquals(v, expected) };
  }
  if ('glob' in config) {
    const pattern = compileGlob(config.glob);
    return {
      claim,
      config,
      operator: 'glob',
      describe: `a match for ${config.glob}`,
      test: (v) => isScalar(v) && typeof v !== 'boolean' && pattern.test(String(v)),
    };
  }
  if ('one_of' in config) {
    const options = config.one_of;
    return {
      claim,
      config,
      operator: 'one_of',
      describe: `one of ${formatValue(options)}`,
      test: (v) => options.some((o) => scalarEquals(v, o)),
    };
  }
  if ('contains' in config) {
    const wanted = Array.isArray(config.contains) ? config.contains : [config.contains];
    return {
      claim,
      config,
      operator: 'contains',
      describe: `a list containing ${wanted.map((w) => formatValue(w)).join(' and ')}`,
      test: (v) => {
        // A single-valued claim (some IdPs send one group as a string) is a list of one.
        const list = Array.isArray(v) ? v : isScalar(v) ? [v] : null;
        return list !== null && wanted.every((w) => list.some((item) => scalarEquals(item, w)));
      },
    };
  }
  const excluded = config.not_one_of;
  return {
    claim,
    config,
    operator: 'not_one_of',
    describe: `none of ${formatValue(excluded)}`,
    test: (v) => {
      const list = Array.isArray(v) ? v : isScalar(v) ? [v] : null;
      return list !== null && list.every((item) => isScalar(item) && !excluded.some((e) => scalarEquals(item, e)));
    },
  };
}

/** Compiles a whole `when` map, keeping its written order (the order failures are reported in). */
export function compileWhen(when: Readonly<Record<string, ConditionConfig>>): CompiledCondition[] {
  return Object.entries(when).map(([claim, config]) => compileCondition(claim, config));
}

/** Reads a claim; null counts as missing. Own properties only, so `constructor` is never a claim. */
export function claimValue(claims: Claims, claim: string): unknown {
  if (!Object.hasOwn(claims, claim)) return undefined;
  const value = claims[claim];
  return value === null ? undefined : value;
}

/** The first condition the claims fail, as a reportable failure, or null when all hold. */
export function firstFailingCondition(conditions: readonly CompiledCondition[], claims: Claims): ConditionFailure | null {
  for (const condition of conditions) {
    const value = claimValue(claims, condition.claim);
    if (condition.test(value)) continue;
    const listHint =
      Array.isArray(value) && condition.operator !== 'contains' && condition.operator !== 'not_one_of'
        ? ' (the claim is a list: use contains)'
        : '';
    return {
      condition: `when.${condition.claim}`,
      field: condition.claim,
      expected: condition.config,
      actual: value === undefined ? MISSING : value,
      message:
        value === undefined
          ? `claim ${condition.claim} was missing, expected ${condition.describe}`
          : `claim ${condition.claim} was ${formatValue(value)}, expected ${condition.describe}${listHint}`,
    };
  }
  return null;
}
