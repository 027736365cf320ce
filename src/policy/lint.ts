import type { Config } from '../config/load.js';
import type { ConditionConfig, RoleName } from '../config/schema.js';
import { GITHUB_CLAIMS, parseGitHubSubject, type GitHubSubject } from '../identity/github.js';
import { compileWhen, type CompiledCondition } from './conditions.js';
import { GITHUB_RISKY_EVENTS, isGitHubIssuer } from './github.js';
import type { LintFinding } from './types.js';

/**
 * Known trust mistakes in a policy, GitHub's above all: any repository on
 * GitHub can mint a token for any audience, so a rule for the GitHub issuer
 * that pins no repository hands its credentials to the whole world. That one
 * is an error (the policy refuses to load); the rest are warnings that
 * `latchkey policy lint` prints and the broker logs at start-up.
 */

type Conditions = ReadonlyMap<string, CompiledCondition>;

// Values no real policy names on purpose: a condition that accepts one accepts any.
const PROBE = 'latchkey-lint-probe';

function isPositive(condition: CompiledCondition | undefined): condition is CompiledCondition {
  return condition !== undefined && condition.operator !== 'not_one_of';
}

function hasWildcard(condition: CompiledCondition): boolean {
  return condition.operator === 'glob' && (condition.config as { glob: string }).glob.includes('*');
}

/**
 * The GitHub subjects an exact `sub` condition (a value or `one_of`) allows,
 * read in either format (`repo:OWNER/REPO:...`, `repo:OWNER@ID/REPO@ID:...`);
 * undefined unless every allowed value names a repository.
 */
function exactSubjects(conditions: Conditions): GitHubSubject[] | undefined {
  const sub = conditions.get('sub');
  if (!sub || (sub.operator !== 'equals' && sub.operator !== 'one_of')) return undefined;
  const config = sub.config as ConditionConfig;
  const values = typeof config === 'object' ? ('equals' in config ? [config.equals] : 'one_of' in config ? config.one_of : []) : [config];
  const subjects = values.map((v) => parseGitHubSubject(String(v)));
  return subjects.length > 0 && subjects.every((s) => s !== undefined) ? (subjects as GitHubSubject[]) : undefined;
}

/** Why the rule's repository conditions do not pin a repository, or null when they do. */
function repositoryPinProblem(conditions: Conditions): string | null {
  const id = conditions.get('repository_id');
  if (isPositive(id) && !hasWildcard(id)) return null;
  // An exact sub names its repository (by name, or by id in the immutable format).
  if (exactSubjects(conditions)) return null;
  const repository = conditions.get('repository');
  if (isPositive(repository)) {
    if (!hasWildcard(repository)) return null;
    const glob = (repository.config as { glob: string }).glob;
    const slash = glob.indexOf('/');
    // A wildcard only in the name part still pins the owner; one in the owner part pins nothing.
    if (slash > 0 && !glob.slice(0, slash).includes('*')) return null;
    return `repository glob ${glob} matches repositories of any owner: any repository on GitHub can mint a token for this audience; pin repository_id (and repository) exactly`;
  }
  return 'no repository_id or repository condition: any repository on GitHub can mint a token for this audience; pin repository_id (and repository) exactly';
}

function ownerWildcardProblem(conditions: Conditions): string | null {
  const id = conditions.get('repository_id');
  if (isPositive(id) && !hasWildcard(id)) return null;
  const repository = conditions.get('repository');
  if (!repository || !hasWildcard(repository)) return null;
  const glob = (repository.config as { glob: string }).glob;
  const slash = glob.indexOf('/');
  if (slash <= 0 || glob.slice(0, slash).includes('*')) return null; // already an error
  const owner = glob.slice(0, slash);
  const name = glob.slice(slash + 1);
  return /^\*+$/.test(name)
    ? `repository glob ${glob} matches every repository of ${owner}, including ones created later by anyone who may create repositories there`
    : `repository glob ${glob} matches any repository of ${owner} whose name fits ${name}, including ones created later`;
}

function pinsRefOrEnvironment(conditions: Conditions): boolean {
  const ref = conditions.get('ref');
  if (isPositive(ref) && !ref.test(`refs/heads/${PROBE}`) && !ref.test('refs/pull/1/merge')) return true;
  const environment = conditions.get('environment');
  if (isPositive(environment) && !environment.test(PROBE)) return true;
  // An exact `sub` of the form repo:owner/name:environment:prod (or :ref:...) pins one too.
  return exactSubjects(conditions)?.every((s) => s.environment !== undefined || s.ref !== undefined) ?? false;
}

/**
 * What makes a rule production's: a target marked `production: true`; where
 * targets do not say, a target or rule name containing "prod". When every
 * target of the rule says, the names do not count.
 */
function productionReason(rule: Config['rules'][number], targets: Config['targets']): string | undefined {
  for (const { target } of rule.allow) {
    const marked = targets[target]?.production;
    if (marked === true) return `target ${target} is marked production`;
    if (marked === undefined && /prod/i.test(target)) return `target ${target} looks like production`;
  }
  const allMarked = rule.allow.every(({ target }) => targets[target]?.production !== undefined);
  return !allMarked && /prod/i.test(rule.name) ? `rule ${rule.name} looks like production` : undefined;
}

function lintGitHubRule(conditions: Conditions, rule: Config['rules'][number], targets: Config['targets']): Omit<LintFinding, 'path' | 'rule'>[] {
  const findings: Omit<LintFinding, 'path' | 'rule'>[] = [];
  const pin = repositoryPinProblem(conditions);
  if (pin) findings.push({ severity: 'error', code: 'github-no-repository', message: pin });

  const wildcard = ownerWildcardProblem(conditions);
  if (wildcard) findings.push({ severity: 'warning', code: 'github-owner-wildcard', message: wildcard });

  const production = productionReason(rule, targets);
  if (production !== undefined && !pinsRefOrEnvironment(conditions)) {
    findings.push({
      severity: 'warning',
      code: 'github-production-unpinned',
      message: `${production} but no ref or environment condition pins it: any branch of the repository can get it`,
    });
  }

  const event = conditions.get('event_name');
  const risky = event ? GITHUB_RISKY_EVENTS.filter((e) => event.test(e)) : [];
  if (risky.length > 0) {
    findings.push({
      severity: 'warning',
      code: 'github-event-risky',
      message: `event_name allows ${risky.join(' and ')}, whose workflows run with this repository's token on code or input from forks`,
    });
  } else if (!isPositive(event)) {
    findings.push({
      severity: 'warning',
      code: 'github-event-unpinned',
      message: `event_name is not pinned to the events that may get this (e.g. one_of: [push, workflow_dispatch]); ${GITHUB_RISKY_EVENTS.join(' and ')} run on code or input from forks`,
    });
  }

  const runner = conditions.get('runner_environment');
  if (!isPositive(runner) || runner.test('self-hosted') || runner.test(PROBE)) {
    findings.push({
      severity: 'warning',
      code: 'github-runner-unpinned',
      message: 'runner_environment is not pinned to github-hosted: jobs on self-hosted runners (whose machines may be shared or persistent) can get this',
    });
  }

  const subjects = exactSubjects(conditions);
  const names = isPositive(conditions.get('repository')) || isPositive(conditions.get('repository_owner')) || subjects?.some((s) => s.format === 'name');
  const ids =
    isPositive(conditions.get('repository_id')) || isPositive(conditions.get('repository_owner_id')) || (subjects?.every((s) => s.format === 'immutable') ?? false);
  if (names && !ids) {
    findings.push({
      severity: 'warning',
      code: 'github-mutable-names',
      message: 'the rule pins repository or owner names but not repository_id/repository_owner_id: a deleted or renamed name can be registered again by someone else',
    });
  }
  return findings;
}

const GITHUB_CLAIM_NAMES: ReadonlySet<string> = new Set(GITHUB_CLAIMS.map((c) => c.claim));

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/** The documented claim a misspelt one most likely meant: one it abbreviates (env), else the closest by a few edits. */
function nearestGitHubClaim(claim: string): string | undefined {
  const known = GITHUB_CLAIMS.map((c) => c.claim);
  if (claim.length >= 3) {
    const longer = known.find((k) => k.startsWith(claim));
    if (longer) return longer;
  }
  let best: { claim: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(claim, k);
    if (!best || distance < best.distance) best = { claim: k, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(claim.length / 3)) ? best.claim : undefined;
}

/**
 * Conditions on claims GitHub's tokens do not carry: a typo (`reff`) makes a
 * rule that no token matches, or, under `not_one_of`, one that tests nothing.
 */
function unknownGitHubClaims(conditions: Conditions): Omit<LintFinding, 'path' | 'rule'>[] {
  return [...conditions.keys()]
    .filter((claim) => !GITHUB_CLAIM_NAMES.has(claim))
    .map((claim) => {
      const near = nearestGitHubClaim(claim);
      return {
        severity: 'warning' as const,
        code: 'github-unknown-claim',
        message: `GitHub Actions tokens carry no claim ${claim}${near ? ` (did you mean ${near}?)` : ''}: a condition on it fails for every token, or under not_one_of tests nothing`,
      };
    });
}

function isSubGlobOnly(conditions: Conditions): boolean {
  const only = conditions.size === 1 ? conditions.get('sub') : undefined;
  return only?.operator === 'glob';
}

/** Every finding for the configuration's rules and roles, in file order. Pure. */
export function lintPolicy(config: Config): LintFinding[] {
  const issuers = new Map(config.issuers.map((i) => [i.name, i]));
  const findings: LintFinding[] = [];

  config.rules.forEach((rule, index) => {
    const at = { path: `rules[${index}]`, rule: rule.name };
    const conditions: Conditions = new Map(compileWhen(rule.when).map((c) => [c.claim, c]));
    const github = isGitHubIssuer(issuers.get(rule.issuer));
    if (github) for (const f of [...unknownGitHubClaims(conditions), ...lintGitHubRule(conditions, rule, config.targets)]) findings.push({ ...f, ...at });
    else if (conditions.size === 0) {
      findings.push({
        ...at,
        severity: 'warning',
        code: 'rule-matches-any-token',
        message: `the rule has no conditions: every token from issuer ${rule.issuer} matches it`,
      });
    }
    if (isSubGlobOnly(conditions)) {
      findings.push({
        ...at,
        severity: 'warning',
        code: 'sub-glob-only',
        message: 'the rule matches only a glob on sub, whose format differs between issuers (and GitHub lets each repository customise it); match the claims it is made of instead',
      });
    }
  });

  for (const [role, matches] of Object.entries(config.roles) as [RoleName, Config['roles'][RoleName]][]) {
    matches.forEach((match, index) => {
      const at = { path: `roles.${role}[${index}]`, rule: role };
      const conditions: Conditions = new Map(compileWhen(match.when).map((c) => [c.claim, c]));
      if (isGitHubIssuer(issuers.get(match.issuer))) {
        for (const f of unknownGitHubClaims(conditions)) findings.push({ ...f, ...at, message: `role ${role}: ${f.message}` });
        const pin = repositoryPinProblem(conditions);
        if (pin) findings.push({ ...at, severity: 'error', code: 'github-no-repository', message: `role ${role}: ${pin}` });
      } else if (conditions.size === 0) {
        findings.push({
          ...at,
          severity: 'warning',
          code: 'role-matches-any-token',
          message: `role ${role} has no conditions: every token from issuer ${match.issuer} holds it`,
        });
      }
    });
  }
  return findings;
}
