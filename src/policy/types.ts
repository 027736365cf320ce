import type { Claims } from '../identity/types.js';

/** What a caller asks for, after HTTP validation. `scope` is validated by the provider. */
export interface GrantRequest {
  readonly kind: string;
  readonly target: string;
  readonly scope: Readonly<Record<string, unknown>>;
  /** Requested lifetime in seconds; capped by the rule. */
  readonly ttlSeconds?: number;
  readonly reason?: string;
}

/** Why one rule did not match: the first failing condition, with expected and actual values. */
export interface ConditionFailure {
  /** Dotted place in the rule, e.g. `when.repository` or `allow.scope.tables`. */
  readonly condition: string;
  /** The claim (or request field) that was compared. */
  readonly field: string;
  readonly expected: unknown;
  readonly actual: unknown;
  readonly message: string;
}

export interface RuleEvaluation {
  readonly rule: string;
  readonly matched: boolean;
  /** Whether the rule has an allowance for the requested kind and target (its failure is the relevant one). */
  readonly covers?: boolean;
  /** Present when `matched` is false. */
  readonly failure?: ConditionFailure;
}

/** The subject + claims the policy sees. */
export interface PolicySubject {
  readonly issuerName: string;
  readonly claims: Claims;
}

import type { AllowEntry, Config, RuleEntry } from '../config/load.js';
import type { RoleName } from '../config/schema.js';

/** Checks a parsed scope against one allowance (a provider's pure `checkScope`, bound by grants). */
export type ScopeChecker = (allow: AllowEntry) => ConditionFailure | null;

/** The outcome of evaluating the policy for one request. */
export interface PolicyDecision {
  readonly allowed: boolean;
  /** The first rule that matched (when allowed). */
  readonly rule?: RuleEntry;
  /** The allowance of that rule that covers the request's kind and target. */
  readonly allow?: AllowEntry;
  /** Lifetime to grant: the request's ttl (or the allowance's max) capped by the allowance. */
  readonly ttlSeconds: number;
  /** Every rule considered, in order, with the first failing condition of each. */
  readonly evaluations: readonly RuleEvaluation[];
  /** SHA-256 of the policy as loaded (hex), recorded on grants and audit events. */
  readonly policyHash: string;
}

/** What a caller is shown of a decision: only rules that concern it (or all, for admins). */
export interface PublicExplanation {
  readonly allowed: boolean;
  readonly rule?: string;
  readonly ttlSeconds?: number;
  /** Rules the caller may see, with their failing condition. */
  readonly evaluations: readonly RuleEvaluation[];
  /** How many rules were considered but are not shown to this caller. */
  readonly hiddenRules: number;
  readonly summary: string;
}

export interface CompiledPolicy {
  readonly hash: string;
  readonly config: Config;
  /** Pure: the decision for this subject and request at `now`. */
  evaluate(subject: PolicySubject, request: GrantRequest, checkScope: ScopeChecker, now: Date): PolicyDecision;
  /** The roles (admin, auditor, approver) whose match conditions the subject meets. */
  rolesOf(subject: PolicySubject): ReadonlySet<RoleName>;
  /** Cuts a decision down to what this caller may see. */
  explainTo(decision: PolicyDecision, subject: PolicySubject, isAdmin: boolean): PublicExplanation;
}

export type LintSeverity = 'error' | 'warning';

export interface LintFinding {
  readonly severity: LintSeverity;
  /** Stable id, e.g. `github-no-repository`. */
  readonly code: string;
  /** Dotted path of the rule, e.g. `rules[3]`. */
  readonly path: string;
  readonly rule: string;
  readonly message: string;
}
