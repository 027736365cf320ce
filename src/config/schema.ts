import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * The shape of latchkey's YAML configuration. Kind-specific parts (a target's
 * settings, a rule's allowance for a kind) are checked afterwards against the
 * provider's own schema, so this file never learns about PostgreSQL or AWS.
 */

/** "15m", "90s", "1h" -> seconds. */
export const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const seconds = parseDuration(value);
    if (seconds === null) {
      ctx.addIssue({ code: 'custom', message: `expected a ${what} such as "90s", "15m" or "1h", got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return seconds;
  });

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a name of lower-case letters, digits, "-" and "_" (at most 63)');

const SCALAR = 'a string, number or boolean';
const scalar = z.union([z.string(), z.number(), z.boolean()], { error: `expected ${SCALAR}` });
const scalars = z.array(scalar, `expected a list of ${SCALAR}s`).min(1, 'expected at least one value');

/** The condition forms other than a bare value, by their one key. */
const conditionForms = {
  equals: scalar,
  glob: z.string('expected a glob pattern (a string)').min(1, 'expected a non-empty glob pattern'),
  one_of: scalars,
  contains: z.union([scalar, z.array(scalar).min(1)], { error: `expected ${SCALAR}, or a non-empty list of them` }),
  not_one_of: scalars,
} as const;
type ConditionForm = keyof typeof conditionForms;

const CONDITION_EXPECTED =
  `expected ${SCALAR} (exact match) or one of {equals: value}, {glob: "pattern"}, {one_of: [values]}, {contains: value or [values]}, {not_one_of: [values]}`;

function isConditionForm(key: string): key is ConditionForm {
  return Object.hasOwn(conditionForms, key);
}

function describeInput(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

/**
 * One claim condition: a bare value means equality. Checked by hand before the
 * union so a mistake says which key is wrong and what was expected; a plain
 * union only says "Invalid input".
 */
export const conditionSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: `${CONDITION_EXPECTED}, got ${describeInput(value)}` });
      return;
    }
    const keys = Object.keys(value);
    const unknown = keys.filter((key) => !isConditionForm(key));
    if (unknown.length > 0) {
      const named = unknown.map((key) => JSON.stringify(key)).join(', ');
      ctx.addIssue({ code: 'custom', message: `unknown condition ${named}: ${CONDITION_EXPECTED}` });
      return;
    }
    const [form, ...more] = keys as ConditionForm[];
    if (form === undefined || more.length > 0) {
      ctx.addIssue({ code: 'custom', message: `expected exactly one condition, got ${form === undefined ? 'none' : keys.join(' and ')}: ${CONDITION_EXPECTED}` });
      return;
    }
    const operand = conditionForms[form].safeParse((value as Record<string, unknown>)[form]);
    for (const issue of operand.error?.issues ?? []) {
      ctx.addIssue({ code: 'custom', path: [form, ...issue.path], message: issue.message });
    }
  })
  // Only reached by a condition the check above accepted: gives it its type.
  .pipe(
    z.union([
      scalar,
      z.strictObject({ equals: conditionForms.equals }),
      z.strictObject({ glob: conditionForms.glob }),
      z.strictObject({ one_of: conditionForms.one_of }),
      z.strictObject({ contains: conditionForms.contains }),
      z.strictObject({ not_one_of: conditionForms.not_one_of }),
    ]),
  );
export type ConditionConfig = z.infer<typeof conditionSchema>;

export const whenSchema = z.record(z.string().min(1), conditionSchema).default({});

export const issuerSchema = z
  .strictObject({
    name,
    /** `github` fills in GitHub Actions' issuer; `dev` is the development issuer of `latchkey dev`. */
    preset: z.enum(['github', 'dev']).optional(),
    /** The exact `iss`. Required unless a preset gives it. */
    issuer: z.url().optional(),
    /** Required audience: the token's `aud` must contain it. */
    audience: z.string().min(1),
    /** Where to read the OIDC discovery document, if not `<issuer>/.well-known/openid-configuration`. */
    discovery_url: z.url().optional(),
    /** Oldest acceptable `iat`. */
    max_token_age: duration('token age').default(3600),
    /** Clock skew allowed on exp/nbf/iat; at most 60 s. */
    leeway: duration('leeway')
      .default(30)
      .refine((s) => s <= 60, 'leeway may be at most 60s'),
    /** Claim that names the caller in grants and audit. */
    subject_claim: z.string().min(1).default('sub'),
    /** Refuse a second use of a token's `jti` on credential-issuing calls. */
    single_use_jti: z.boolean().default(true),
    /** Permit an `http://` issuer (tests, dev). Never in production. */
    allow_insecure_http: z.boolean().default(false),
    /**
     * `latchkey login` through this issuer: a public client (no secret) registered
     * at the IdP with the loopback redirect `http://127.0.0.1[:redirect_port]/callback` (RFC 8252).
     */
    cli_login: z
      .strictObject({
        /** The client id; an ID token's `aud` is its client id, so it must equal `audience`. */
        client_id: z.string().min(1),
        scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected an OAuth scope token')).min(1).default(['openid', 'email', 'profile', 'groups']),
        /** For IdPs that match the redirect URI's port exactly; otherwise a free port is picked per login. */
        redirect_port: z.number().int().min(1).max(65535).optional(),
      })
      .optional(),
  })
  .superRefine((value, ctx) => {
    if (!value.preset && !value.issuer) {
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'expected an issuer URL (or preset: github)' });
    }
    if (value.cli_login && value.cli_login.client_id !== value.audience) {
      ctx.addIssue({ code: 'custom', path: ['cli_login', 'client_id'], message: `expected the issuer's audience ${JSON.stringify(value.audience)}: the ID tokens a login brings back carry the client id as aud` });
    }
    if (value.cli_login && !value.cli_login.scopes.includes('openid')) {
      ctx.addIssue({ code: 'custom', path: ['cli_login', 'scopes'], message: 'expected "openid" among the scopes (without it the IdP returns no ID token)' });
    }
    if (value.cli_login && value.preset) {
      ctx.addIssue({ code: 'custom', path: ['cli_login'], message: `expected no cli_login on a ${value.preset} preset issuer: its tokens do not come from a browser sign-in` });
    }
  });
export type IssuerConfig = z.infer<typeof issuerSchema>;

/** A rule's allowance; its kind-specific fields are checked by the provider. */
export const allowSchema = z.looseObject({
  kind: z.string().min(1),
  target: name,
  max_ttl: duration('grant lifetime').optional(),
  /** Another person holding the approver role must approve before issuing. */
  require_approval: z.boolean().default(false),
});
export type AllowConfig = z.infer<typeof allowSchema>;

export const ruleSchema = z.strictObject({
  name,
  description: z.string().optional(),
  issuer: name,
  when: whenSchema,
  allow: z.array(allowSchema).min(1),
});
export type RuleConfig = z.infer<typeof ruleSchema>;

export const roleMatchSchema = z.strictObject({ issuer: name, when: whenSchema });
export type RoleMatchConfig = z.infer<typeof roleMatchSchema>;

export const targetSchema = z.looseObject({
  kind: z.string().min(1),
  /** Marks a production backend for policy lint (GitHub rules must pin a ref or environment); unset, a name with "prod" counts. */
  production: z.boolean().optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8420),
      /** The URL callers use; defaults to http://host:port. */
      public_url: z.url().optional(),
      body_limit: z.string().default('64kb'),
      /** Express `trust proxy` setting, for the client address behind a load balancer. */
      trust_proxy: z.union([z.boolean(), z.string(), z.number()]).default(false),
      log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Longest grant any rule may give. */
      max_ttl: duration('grant lifetime').default(900),
      /**
       * How long a grant that needs approval may wait to be approved and claimed;
       * its credential's lifetime starts at the claim.
       */
      approval_window: duration('approval window').default(3600),
      /** Grant requests one caller (issuer + subject) may make, per replica. */
      rate_limit: z
        .strictObject({
          // A matrix build asks for many credentials at once under one subject: generous bursts.
          per_minute: z.number().int().min(1).max(100_000).default(300),
          burst: z.number().int().min(1).max(100_000).default(100),
        })
        .prefault({}),
      /** How often the audit log's checkpoint is signed while it grows. */
      checkpoint_interval: duration('interval').default(60),
      /** Seconds between reconciliation sweeps (orphans, retries). */
      reconcile_interval: duration('interval').default(60),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** Env var holding the connection URL. Unset -> embedded PostgreSQL. */
      url_env: z.string().default('DATABASE_URL'),
      /** File holding the connection URL (Kubernetes Secret mount). */
      url_file: z.string().optional(),
      pool_size: z.number().int().min(1).max(200).default(10),
    })
    .prefault({}),
  /** Where dev mode and the embedded database keep their files. */
  data_dir: z.string().default('.latchkey'),
  keys: z
    .strictObject({
      /** Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints. */
      audit_signing_key_file: z.string().optional(),
    })
    .prefault({}),
  issuers: z.array(issuerSchema).min(1),
  targets: z.record(name, targetSchema).default({}),
  rules: z.array(ruleSchema).default([]),
  roles: z
    .strictObject({
      admin: z.array(roleMatchSchema).default([]),
      auditor: z.array(roleMatchSchema).default([]),
      approver: z.array(roleMatchSchema).default([]),
    })
    .prefault({}),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RoleName = keyof RawConfig['roles'];
