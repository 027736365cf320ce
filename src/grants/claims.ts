import type { RuleEntry } from '../config/load.js';
import type { Claims } from '../identity/types.js';

/**
 * Claims worth keeping on a grant and its audit events: who and what ran
 * (GitHub's repository, ref, run...; an SSO user's email and groups), plus any
 * claim the matching rule tested. Never the whole token.
 */
const KEPT_CLAIMS = [
  'iss', 'sub', 'aud', 'jti',
  // GitHub Actions
  'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'repository_visibility',
  'ref', 'ref_type', 'sha', 'environment', 'event_name', 'workflow', 'workflow_ref', 'job_workflow_ref',
  'run_id', 'run_number', 'run_attempt', 'actor', 'actor_id', 'runner_environment',
  // SSO
  'email', 'preferred_username', 'name', 'groups', 'amr', 'acr',
  // dev tokens
  'team',
];

const MAX_VALUE_LENGTH = 512;

export function selectClaims(claims: Claims, rule?: RuleEntry): Record<string, unknown> {
  const wanted = new Set([...KEPT_CLAIMS, ...Object.keys(rule?.when ?? {})]);
  const out: Record<string, unknown> = {};
  for (const name of wanted) {
    const value = claims[name];
    if (value === undefined) continue;
    out[name] = clip(value);
  }
  return out;
}

function clip(value: unknown): unknown {
  if (typeof value === 'string') return value.length > MAX_VALUE_LENGTH ? `${value.slice(0, MAX_VALUE_LENGTH)}…` : value;
  if (Array.isArray(value)) return value.slice(0, 64).map(clip);
  if (value && typeof value === 'object') return '[object]';
  return value;
}
