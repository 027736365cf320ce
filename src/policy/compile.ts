import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import type { AllowEntry, Config, RuleEntry } from '../config/load.js';
import type { RoleName } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { compileWhen, firstFailingCondition, type CompiledCondition } from './conditions.js';
import { GITHUB_OWNER_CLAIMS, isGitHubIssuer } from './github.js';
import { lintPolicy } from './lint.js';
import type {
  CompiledPolicy,
  ConditionFailure,
  GrantRequest,
  LintFinding,
  PolicyDecision,
  PolicySubject,
  PublicExplanation,
  RuleEvaluation,
  ScopeChecker,
} from './types.js';

interface CompiledRule {
  readonly rule: RuleEntry;
  readonly conditions: readonly CompiledCondition[];
  /** For GitHub rules: the owner conditions that decide who may see the rule's detail. */
  readonly ownerConditions: readonly CompiledCondition[];
  readonly github: boolean;
}

interface CompiledRoleMatch {
  readonly issuer: string;
  readonly conditions: readonly CompiledCondition[];
}

/** The compiled policy also carries its lint warnings, for the start-up log. */
export interface LoadedPolicy extends CompiledPolicy {
  /** Lint findings that did not stop the load (warnings only: errors throw). */
  readonly warnings: readonly LintFinding[];
}

function describeAllowances(rule: RuleEntry): string {
  return rule.allow.map((a) => `${a.kind} on ${a.target}`).join(', ');
}

/** SHA-256 (hex) of the JCS form of everything that decides who gets what. */
function policyHash(config: Config): string {
  const text = canonicalJson({ issuers: config.issuers, targets: config.targets, rules: config.rules, roles: config.roles });
  if (text === undefined) throw new TypeError('policy is not serialisable');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Compiles a validated configuration's policy once: conditions into
 * matchers, globs into anchored expressions, the lint run. Throws ConfigError
 * listing every lint error (`<file>: rules[i] (<name>): message`); warnings
 * are kept on the result.
 */
export function compilePolicy(config: Config): LoadedPolicy {
  const findings = lintPolicy(config);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) {
    const problems = errors.map((f) => `${config.source}: ${f.path} (${f.rule}): ${f.message} [${f.code}]`);
    throw new ConfigError(`policy in ${config.source} refused:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      source: config.source,
      problems,
    });
  }

  const issuers = new Map(config.issuers.map((i) => [i.name, i]));
  const rules: CompiledRule[] = config.rules.map((rule) => {
    const conditions = compileWhen(rule.when);
    return {
      rule,
      conditions,
      ownerConditions: conditions.filter((c) => (GITHUB_OWNER_CLAIMS as readonly string[]).includes(c.claim)),
      github: isGitHubIssuer(issuers.get(rule.issuer)),
    };
  });
  const ruleByName = new Map(rules.map((r) => [r.rule.name, r]));
  const roles = Object.entries(config.roles).map(
    ([role, matches]) =>
      [role as RoleName, matches.map((m): CompiledRoleMatch => ({ issuer: m.issuer, conditions: compileWhen(m.when) }))] as const,
  );
  const hash = policyHash(config);

  function evaluate(subject: PolicySubject, request: GrantRequest, checkScope: ScopeChecker, _now: Date): PolicyDecision {
    const evaluations: RuleEvaluation[] = [];
    for (const compiled of rules) {
      const { rule } = compiled;
      if (rule.issuer !== subject.issuerName) continue;
      const candidates = rule.allow.filter((a) => a.kind === request.kind && a.target === request.target);
      const covers = candidates.length > 0;
      const failure = firstFailingCondition(compiled.conditions, subject.claims);
      if (failure) {
        evaluations.push({ rule: rule.name, matched: false, covers, failure });
        continue;
      }
      if (candidates.length === 0) {
        evaluations.push({
          rule: rule.name,
          matched: false,
          covers,
          failure: {
            condition: 'allow',
            field: 'target',
            expected: rule.allow.map((a) => ({ kind: a.kind, target: a.target })),
            actual: { kind: request.kind, target: request.target },
            message: `the rule allows ${describeAllowances(rule)}, not ${request.kind} on ${request.target}`,
          },
        });
        continue;
      }
      // Several allowances for one target may differ in scope: the first that fits wins.
      let scopeFailure: ConditionFailure | null = null;
      for (const allow of candidates) {
        const failed = checkScope(allow);
        if (failed) {
          scopeFailure ??= failed;
          continue;
        }
        evaluations.push({ rule: rule.name, matched: true });
        return { allowed: true, rule, allow, ttlSeconds: grantedTtl(request, allow), evaluations, policyHash: hash };
      }
      evaluations.push({ rule: rule.name, matched: false, covers, failure: scopeFailure as ConditionFailure });
    }
    return { allowed: false, ttlSeconds: 0, evaluations, policyHash: hash };
  }

  /**
   * Which rules' detail this caller may see. GitHub issuer: only rules with a
   * `repository_owner`/`repository_owner_id` condition, all of which the token
   * meets (a rule with neither is shown to admins only), because any
   * repository on GitHub can mint a token and ask. Other issuers (a company's
   * SSO, the dev issuer) are one organisation: every rule of the caller's own
   * issuer is shown. The rule that allowed the request is always shown: the
   * caller meets all of its conditions.
   */
  function visibleTo(subject: PolicySubject, evaluation: RuleEvaluation): boolean {
    const compiled = ruleByName.get(evaluation.rule);
    if (!compiled || compiled.rule.issuer !== subject.issuerName) return false;
    if (evaluation.matched) return true;
    if (!compiled.github) return true;
    return compiled.ownerConditions.length > 0 && firstFailingCondition(compiled.ownerConditions, subject.claims) === null;
  }

  function explainTo(decision: PolicyDecision, subject: PolicySubject, isAdmin: boolean): PublicExplanation {
    const evaluations = isAdmin ? decision.evaluations : decision.evaluations.filter((e) => visibleTo(subject, e));
    const hiddenRules = decision.evaluations.length - evaluations.length;
    if (decision.allowed && decision.rule && decision.allow) {
      const { rule, allow } = decision;
      return {
        allowed: true,
        rule: rule.name,
        ttlSeconds: decision.ttlSeconds,
        evaluations,
        hiddenRules,
        summary: `rule ${rule.name} allows ${allow.kind} on ${allow.target} for ${decision.ttlSeconds}s${allow.require_approval ? ', after approval by someone else' : ''}`,
      };
    }
    // The most telling failure: a rule for this very target whose conditions held but whose scope
    // did not fit, then one for this target whose conditions failed, then any.
    const first =
      evaluations.find((e) => e.failure && e.covers && !e.failure.condition.startsWith('when')) ??
      evaluations.find((e) => e.failure && e.covers) ??
      evaluations.find((e) => e.failure);
    const summary = first?.failure ? `no rule matched; rule ${first.rule}: ${first.failure.message}` : 'no rule matched';
    return { allowed: false, evaluations, hiddenRules, summary };
  }

  function rolesOf(subject: PolicySubject): ReadonlySet<RoleName> {
    const held = new Set<RoleName>();
    for (const [role, matches] of roles) {
      const meets = (m: CompiledRoleMatch) => m.issuer === subject.issuerName && firstFailingCondition(m.conditions, subject.claims) === null;
      if (matches.some(meets)) held.add(role);
    }
    return held;
  }

  return { hash, config, warnings: findings, evaluate, explainTo, rolesOf };
}

/** The request's ttl (or the allowance's max), never above the max. */
function grantedTtl(request: GrantRequest, allow: AllowEntry): number {
  return Math.min(request.ttlSeconds ?? allow.maxTtl, allow.maxTtl);
}
