import { createHash } from 'node:crypto';
import { TemplateError } from '../../errors.js';
import type { Claims } from '../../identity/types.js';
import { renderTemplate } from '../../policy/template.js';
import type { ConditionFailure } from '../../policy/types.js';
import { SESSION_NAME_CHARS, SESSION_NAME_CHARS_WHAT, STS_LIMITS, TAG_CHARS, TAG_CHARS_WHAT, type AwsRoleSettings } from './settings.js';

/**
 * Turns a role's templates and a caller's claims into the exact AssumeRole
 * parameters, or the first STS limit they would break. Pure, so the policy
 * can call it through `checkScope` and refuse before any STS request.
 */

/** What AssumeRole will be sent, minus the duration and external id. */
export interface RenderedSession {
  readonly roleSessionName: string;
  readonly sourceIdentity: string;
  readonly tags: readonly { readonly Key: string; readonly Value: string }[];
  /** Compact JSON of the rendered session policy, as sent. */
  readonly policy?: string;
  /** SHA-256 (hex) of `policy`, for the audit log. */
  readonly policySha256?: string;
}

export type RenderResult = { readonly ok: true; readonly session: RenderedSession } | { readonly ok: false; readonly failure: ConditionFailure };

const SESSION_NAME_WHAT = `${STS_LIMITS.sessionNameMin}..${STS_LIMITS.sessionNameMax} characters of ${SESSION_NAME_CHARS_WHAT}`;
// Claims put into a policy may not widen it: no wildcards (*, ?), no policy variables ($), no quotes or spaces.
const POLICY_VALUE = /[A-Za-z0-9_.:/=+@-]+/;
const POLICY_VALUE_WHAT = 'letters, digits and _.:/=+@- (no wildcards or policy variables)';

// Module-level patterns: renderTemplate caches its anchored form per RegExp object.
const SESSION_NAME_PART = /[\w+=,.@-]+/;
const TAG_VALUE = new RegExp(`${TAG_CHARS.source}*`, 'u');
const NOT_SESSION_NAME_CHAR = new RegExp(`[^${SESSION_NAME_CHARS.source.slice(1, -1)}]`, 'gu');

/** The subject made fit for a session name: other characters become "-", cut to 64. */
export function sessionNameFromSubject(subject: string): string {
  let name = subject.replace(NOT_SESSION_NAME_CHAR, '-').slice(0, STS_LIMITS.sessionNameMax);
  if (name.length < STS_LIMITS.sessionNameMin) name = `latchkey-${name}`.slice(0, STS_LIMITS.sessionNameMax);
  return name;
}

class LimitBroken extends Error {
  constructor(readonly failure: ConditionFailure) {
    super(failure.message);
  }
}

function fromTemplateError(err: TemplateError, claims: Claims, condition: string): ConditionFailure {
  const claim = String(err.detail['claim'] ?? '');
  return { condition, field: claim, expected: err.detail['expected'], actual: shortened(claims[claim]), message: err.message };
}

function shortened(value: unknown): unknown {
  return typeof value === 'string' && value.length > 80 ? `${value.slice(0, 77)}...` : (value ?? null);
}

function render(template: string, values: Claims, options: { allowed: RegExp; what: string }, condition: string): string {
  // Most policy strings hold no placeholder: nothing to fill or unescape.
  if (!template.includes('{') && !template.includes('}')) return template;
  try {
    return renderTemplate(template, values, options);
  } catch (err) {
    if (err instanceof TemplateError) throw new LimitBroken(fromTemplateError(err, values, condition));
    throw err;
  }
}

function checkLength(value: string, min: number, max: number, condition: string, field: string, what: string): void {
  if (value.length < min || value.length > max) {
    throw new LimitBroken({
      condition,
      field,
      expected: what,
      actual: shortened(value),
      message: `${field} would be ${value.length} characters; STS allows ${min} to ${max} (${what})`,
    });
  }
}

function renderName(
  template: string | undefined,
  subject: string,
  claims: Claims,
  condition: string,
  field: 'RoleSessionName' | 'SourceIdentity',
): string {
  if (template === undefined) return sessionNameFromSubject(subject);
  const value = render(template, claims, { allowed: SESSION_NAME_PART, what: `a ${field} part (${SESSION_NAME_WHAT})` }, condition);
  checkLength(value, STS_LIMITS.sessionNameMin, STS_LIMITS.sessionNameMax, condition, field, SESSION_NAME_WHAT);
  return value;
}

function renderPolicyValue(value: unknown, claims: Claims, condition: string): unknown {
  if (typeof value === 'string') return render(value, claims, { allowed: POLICY_VALUE, what: POLICY_VALUE_WHAT }, condition);
  if (Array.isArray(value)) return value.map((item) => renderPolicyValue(item, claims, condition));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, item]) => [k, renderPolicyValue(item, claims, condition)]));
  }
  return value;
}

/**
 * Renders one role's AssumeRole parameters for a caller. `subject` names the
 * caller when no session name / source identity template is set; `where` is
 * the dotted place of the role in the configuration, for failures.
 */
export function renderSession(role: AwsRoleSettings, claims: Claims, subject: string, where: string): RenderResult {
  try {
    const roleSessionName = renderName(role.session_name, subject, claims, `${where}.session_name`, 'RoleSessionName');
    const sourceIdentity = renderName(role.source_identity, subject, claims, `${where}.source_identity`, 'SourceIdentity');

    const tags = Object.entries(role.session_tags).map(([Key, template]) => {
      const condition = `${where}.session_tags.${Key}`;
      const Value = render(template, claims, { allowed: TAG_VALUE, what: TAG_CHARS_WHAT }, condition);
      checkLength(Value, 0, STS_LIMITS.tagValueMax, condition, `session tag ${Key}`, `at most ${STS_LIMITS.tagValueMax} characters`);
      return { Key, Value };
    });
    // The schema caps configured tags already; this keeps the limit true if that ever changes.
    if (tags.length > STS_LIMITS.maxTags) {
      throw new LimitBroken({
        condition: `${where}.session_tags`,
        field: 'Tags',
        expected: `at most ${STS_LIMITS.maxTags} session tags`,
        actual: tags.length,
        message: `${tags.length} session tags; STS accepts at most ${STS_LIMITS.maxTags}`,
      });
    }

    if (role.session_policy === undefined) return { ok: true, session: { roleSessionName, sourceIdentity, tags } };
    const condition = `${where}.session_policy`;
    const policy = JSON.stringify(renderPolicyValue(role.session_policy, claims, condition));
    if (policy.length > STS_LIMITS.policyMaxChars) {
      throw new LimitBroken({
        condition,
        field: 'Policy',
        expected: `at most ${STS_LIMITS.policyMaxChars} characters (whitespace excluded)`,
        actual: policy.length,
        message: `the rendered session policy is ${policy.length} characters; STS allows at most ${STS_LIMITS.policyMaxChars} characters (whitespace excluded)`,
      });
    }
    // STS accepts only tab, line feed, carriage return and U+0020..U+00FF in a policy (JSON.stringify leaves others raw).
    const outside = /[^\t\n\r\u0020-\u00ff]/.exec(policy);
    if (outside) {
      throw new LimitBroken({
        condition,
        field: 'Policy',
        expected: 'characters U+0020..U+00FF',
        actual: outside[0],
        message: 'the rendered session policy holds characters STS does not accept (only U+0020..U+00FF)',
      });
    }
    const policySha256 = createHash('sha256').update(policy).digest('hex');
    return { ok: true, session: { roleSessionName, sourceIdentity, tags, policy, policySha256 } };
  } catch (err) {
    if (err instanceof LimitBroken) return { ok: false, failure: err.failure };
    throw err;
  }
}
