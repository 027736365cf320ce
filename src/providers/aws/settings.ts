import { z } from 'zod';
import { duration } from '../../config/schema.js';
import { templateLiterals, templatePlaceholders } from '../../policy/template.js';

/**
 * The configuration and request shapes of the aws kind: a target (one account
 * and region, with named roles the broker may assume), a rule's allowance on
 * it, and a request's scope. Limits STS enforces are checked here when they
 * depend only on the configuration, and in `session.ts` when claims fill them.
 */

/** STS's own limits, named so error messages can cite them. */
export const STS_LIMITS = {
  /** RoleSessionName and SourceIdentity: 2..64 of `[\w+=,.@-]`. */
  sessionNameMin: 2,
  sessionNameMax: 64,
  /** Session tags per AssumeRole. */
  maxTags: 50,
  tagKeyMax: 128,
  tagValueMax: 256,
  /** Plain-text size of the inline session policy, whitespace excluded. */
  policyMaxChars: 2048,
  /** Managed policies passed as PolicyArns. */
  maxPolicyArns: 10,
  /** DurationSeconds: STS's minimum, and the most any role can allow. */
  minDurationSeconds: 900,
  maxDurationSeconds: 43200,
  /** ExternalId: 2..1224 of `[\w+=,.@:/-]`. */
  externalIdMin: 2,
  externalIdMax: 1224,
} as const;

/** Said in every response and in the README: there is no per-credential revocation in STS. */
export const STS_REVOCATION_NOTE =
  'STS credentials cannot be revoked one by one: they stay valid until they expire. To cut off every session of a role issued before now, an admin runs `latchkey aws revoke-sessions --target T --role R`.';

/** Characters STS accepts in RoleSessionName and SourceIdentity. */
export const SESSION_NAME_CHARS = /[\w+=,.@-]/;
export const SESSION_NAME_CHARS_WHAT = 'letters, digits and _+=,.@-';
/** Characters AWS accepts in tag keys and values (letters, spaces and digits of any script, `_.:/=+-@`). */
export const TAG_CHARS = /[\p{L}\p{Z}\p{N}_.:/=+\-@]/u;
export const TAG_CHARS_WHAT = 'letters, digits, spaces and _.:/=+-@';
const EXTERNAL_ID = /^[\w+=,.@:/-]+$/;

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const POLICY_ARN = /^arn:aws[a-z-]*:iam::(?:\d{12}|aws):policy\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,128}$/;

const roleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a name of lower-case letters, digits, "-" and "_" (at most 63)');

/**
 * A string that may hold `{claim}` placeholders; a malformed one is a config
 * error, and so is fixed text with a character STS would refuse there
 * (`chars`: one allowed character).
 */
const template = (what: string, chars: RegExp, charsWhat: string) =>
  z.string().superRefine((value, ctx) => {
    try {
      templatePlaceholders(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${(err as Error).message}` });
      return;
    }
    const outside = [...templateLiterals(value)].find((ch) => !chars.test(ch));
    if (outside !== undefined) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${JSON.stringify(outside)} is not allowed there; STS accepts ${charsWhat}` });
    }
  });

/** Every string in a JSON value, with the path that leads to it. */
export function* jsonStrings(value: unknown, path: (string | number)[] = []): Generator<[string, (string | number)[]]> {
  if (typeof value === 'string') yield [value, path];
  else if (Array.isArray(value)) for (const [i, item] of value.entries()) yield* jsonStrings(item, [...path, i]);
  else if (value && typeof value === 'object') for (const [k, item] of Object.entries(value)) yield* jsonStrings(item, [...path, k]);
}

// A session policy is written as YAML (a mapping) or as a JSON string; either way it becomes an object.
const sessionPolicy = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .transform((value, ctx) => {
    let policy: unknown = value;
    if (typeof value === 'string') {
      try {
        policy = JSON.parse(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `expected a JSON policy document: ${(err as Error).message}` });
        return z.NEVER;
      }
    }
    if (!policy || typeof policy !== 'object' || Array.isArray(policy) || !('Statement' in policy)) {
      ctx.addIssue({ code: 'custom', message: 'expected an IAM policy document with "Version" and "Statement"' });
      return z.NEVER;
    }
    for (const [text, path] of jsonStrings(policy)) {
      try {
        templatePlaceholders(text);
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `${(err as Error).message}; IAM policy variables are written with doubled braces: "$\{{aws:username}}"`,
        });
      }
    }
    return policy as Readonly<Record<string, unknown>>;
  });

// Checked in the role's superRefine: zod reports a bad record key only as "Invalid key in record".
function tagKeyProblem(key: string): string | null {
  if (key.length < 1 || key.length > STS_LIMITS.tagKeyMax) return `expected a tag key of 1 to ${STS_LIMITS.tagKeyMax} characters`;
  if (!new RegExp(`^${TAG_CHARS.source}+$`, 'u').test(key)) return `expected a tag key of ${TAG_CHARS_WHAT}`;
  if (key.toLowerCase().startsWith('aws:')) return 'tag keys starting with "aws:" are reserved by AWS';
  return null;
}

export const awsRoleSchema = z
  .strictObject({
    /** The role the broker assumes: `arn:aws:iam::123456789012:role/deploy`. */
    role_arn: z.string().regex(ROLE_ARN, 'expected an IAM role ARN such as "arn:aws:iam::123456789012:role/deploy"'),
    /**
     * Inline session policy (narrows the role): a policy document whose string
     * values may hold `{claim}` placeholders, e.g. `arn:aws:s3:::deploys/{repository_id}/*`.
     */
    session_policy: sessionPolicy.optional(),
    /** Managed policies intersected with the role (at most 10). */
    policy_arns: z
      .array(z.string().regex(POLICY_ARN, 'expected an IAM policy ARN such as "arn:aws:iam::aws:policy/ReadOnlyAccess"'))
      .max(STS_LIMITS.maxPolicyArns, `STS accepts at most ${STS_LIMITS.maxPolicyArns} managed policy ARNs`)
      .default([]),
    /** Session tags: key -> value template, e.g. `repository: "{repository}"`. CloudTrail shows them. */
    session_tags: z.record(z.string(), template('session tag value', TAG_CHARS, TAG_CHARS_WHAT)).default({}),
    /** RoleSessionName template; default: the caller's subject with other characters replaced by "-". */
    session_name: template('session name', SESSION_NAME_CHARS, SESSION_NAME_CHARS_WHAT).optional(),
    /** SourceIdentity template; default: derived from the subject like the session name. */
    source_identity: template('source identity', SESSION_NAME_CHARS, SESSION_NAME_CHARS_WHAT).optional(),
    /** ExternalId the role's trust policy requires (not a secret to AWS, but it may come from the environment). */
    external_id: z.string().optional(),
    /** Environment variable holding the ExternalId. */
    external_id_env: z.string().min(1).optional(),
    /** The role's MaxSessionDuration in IAM: longer grants are capped to it. */
    max_session_duration: duration('session duration')
      .default(3600)
      .refine(
        (s) => s >= STS_LIMITS.minDurationSeconds && s <= STS_LIMITS.maxDurationSeconds,
        `expected between ${STS_LIMITS.minDurationSeconds}s and ${STS_LIMITS.maxDurationSeconds}s, as IAM allows`,
      ),
  })
  .superRefine((role, ctx) => {
    const keys = Object.keys(role.session_tags);
    if (keys.length > STS_LIMITS.maxTags) {
      ctx.addIssue({ code: 'custom', path: ['session_tags'], message: `STS accepts at most ${STS_LIMITS.maxTags} session tags, got ${keys.length}` });
    }
    const seen = new Map<string, string>();
    for (const key of keys) {
      const problem = tagKeyProblem(key);
      if (problem) ctx.addIssue({ code: 'custom', path: ['session_tags', key], message: problem });
      const folded = key.toLowerCase();
      const other = seen.get(folded);
      if (other) ctx.addIssue({ code: 'custom', path: ['session_tags', key], message: `tag keys are case-insensitive to AWS: "${key}" repeats "${other}"` });
      seen.set(folded, key);
    }
    if (role.external_id !== undefined && role.external_id_env !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['external_id'], message: 'expected external_id or external_id_env, not both' });
    }
    if (role.external_id !== undefined && !validExternalId(role.external_id)) {
      ctx.addIssue({ code: 'custom', path: ['external_id'], message: externalIdExpectation });
    }
  });
export type AwsRoleSettings = z.infer<typeof awsRoleSchema>;

export const externalIdExpectation = `expected ${STS_LIMITS.externalIdMin}..${STS_LIMITS.externalIdMax} characters of letters, digits and _+=,.@:/-`;
export function validExternalId(value: string): boolean {
  return value.length >= STS_LIMITS.externalIdMin && value.length <= STS_LIMITS.externalIdMax && EXTERNAL_ID.test(value);
}

export const awsTargetSchema = z.strictObject({
  /** Region of the STS endpoint the broker calls (regional endpoints, as AWS recommends). */
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'expected an AWS region such as "eu-west-1"'),
  /** STS endpoint override: a VPC or FIPS endpoint, or a local one in tests. */
  sts_endpoint: z.url().optional(),
  /** IAM endpoint override (used by `aws revoke-sessions`). */
  iam_endpoint: z.url().optional(),
  /** Roles requests may name, by a short name: `scope: { role: deploy }`. */
  roles: z
    .record(roleName, awsRoleSchema)
    .refine((roles) => Object.keys(roles).length > 0, 'expected at least one role'),
});
export type AwsTarget = z.infer<typeof awsTargetSchema>;

export const awsAllowSchema = z.strictObject({
  /** Names of the target's roles this rule lets a caller assume. */
  roles: z.array(roleName).min(1, 'expected at least one role name'),
});
export type AwsAllow = z.infer<typeof awsAllowSchema>;

export const awsScopeSchema = z.strictObject({
  /** One of the target's role names. */
  role: roleName,
});
export type AwsScope = z.infer<typeof awsScopeSchema>;
