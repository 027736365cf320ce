import { AssumeRoleCommand, STSClient, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { Logger } from 'pino';
import { InvalidScope, ProviderMisconfigured, TemplateError } from '../../errors.js';
import type { IssueInput, IssuedCredential, ProviderDeps, RevokeInput, TargetProvider } from '../provider.js';
import { mapAwsError } from './aws-errors.js';
import { renderSession } from './session.js';
import { STS_LIMITS, STS_REVOCATION_NOTE, externalIdExpectation, validExternalId, type AwsAllow, type AwsRoleSettings, type AwsScope, type AwsTarget } from './settings.js';

// Bounded waits so a stuck STS endpoint becomes a 503, not a hung request.
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** DurationSeconds for a grant: its lifetime, at least STS's 900 s and at most the role's maximum. */
export function sessionDurationSeconds(issuedAt: Date, expiresAt: Date, role: AwsRoleSettings): number {
  const seconds = Math.ceil((expiresAt.getTime() - issuedAt.getTime()) / 1000);
  return Math.min(Math.max(seconds, STS_LIMITS.minDurationSeconds), role.max_session_duration);
}

/** Where the SDK will send STS calls for this target. */
export function stsEndpointOf(target: AwsTarget): string {
  return target.sts_endpoint ?? `https://sts.${target.region}.amazonaws.com`;
}

/** IAM is global: its signing region is the partition's home region. */
export function iamRegionOf(region: string): string {
  if (region.startsWith('cn-')) return 'cn-north-1';
  if (region.startsWith('us-gov-')) return 'us-gov-west-1';
  return 'us-east-1';
}

/**
 * One configured aws target: an STS client built once, with the broker's own
 * credentials from the SDK's default provider chain, that assumes the
 * target's roles narrowed by a session policy.
 */
export class AwsTargetProvider implements TargetProvider<AwsAllow, AwsScope> {
  readonly kind = 'aws';
  /** STS sessions simply stop working at expiry; there is nothing to clean up. */
  readonly revokeOnExpiry = false;
  readonly revocationNote = STS_REVOCATION_NOTE;
  readonly sts: STSClient;
  #iam: IAMClient | undefined;
  readonly #externalIds: ReadonlyMap<string, string>;
  readonly #logger: Logger;

  constructor(
    readonly name: string,
    readonly settings: AwsTarget,
    deps: Pick<ProviderDeps, 'logger'>,
    env: Readonly<Record<string, string | undefined>> = process.env,
  ) {
    this.#logger = deps.logger;
    const externalIds = new Map<string, string>();
    for (const [roleName, role] of Object.entries(settings.roles)) {
      const value = role.external_id_env !== undefined ? env[role.external_id_env] : role.external_id;
      if (role.external_id_env !== undefined && !value) {
        throw new ProviderMisconfigured(`target ${name}: role ${roleName} takes its external id from $${role.external_id_env}, which is not set`);
      }
      if (value !== undefined) {
        if (!validExternalId(value)) throw new ProviderMisconfigured(`target ${name}: role ${roleName}'s external id: ${externalIdExpectation}`);
        externalIds.set(roleName, value);
      }
    }
    this.#externalIds = externalIds;
    // No credentials here on purpose: the default provider chain (env, web identity/IRSA, instance profile) supplies them.
    this.sts = new STSClient({
      region: settings.region,
      // Resolve the middleware stack once per command class instead of on every send (about half a
      // millisecond of CPU per AssumeRole); nothing adds middleware to this client after it is built.
      cacheMiddleware: true,
      ...(settings.sts_endpoint ? { endpoint: settings.sts_endpoint } : {}),
      requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
    });
  }

  /** The role's settings, or InvalidScope naming the roles that exist. */
  role(roleName: string): AwsRoleSettings {
    const role = Object.hasOwn(this.settings.roles, roleName) ? this.settings.roles[roleName] : undefined;
    if (!role) {
      throw new InvalidScope(`target ${this.name} has no role "${roleName}" (configured: ${Object.keys(this.settings.roles).join(', ')})`, { field: 'scope.role' });
    }
    return role;
  }

  async issue(input: IssueInput<AwsAllow, AwsScope>): Promise<IssuedCredential> {
    const roleName = input.scope.role;
    if (!input.allow.roles.includes(roleName)) {
      throw new InvalidScope(`the matching rule does not allow role "${roleName}" on target ${this.name}`, { field: 'scope.role' });
    }
    const role = this.role(roleName);
    // checkScope rendered the same thing already; rendering again keeps issue safe on its own.
    const rendered = renderSession(role, input.claims, input.subject, `targets.${this.name}.roles.${roleName}`);
    if (!rendered.ok) throw new TemplateError(rendered.failure.message, { ...rendered.failure });
    const { session } = rendered;
    const externalId = this.#externalIds.get(roleName);

    const request: AssumeRoleCommandInput = {
      RoleArn: role.role_arn,
      RoleSessionName: session.roleSessionName,
      SourceIdentity: session.sourceIdentity,
      DurationSeconds: sessionDurationSeconds(input.issuedAt, input.expiresAt, role),
      ...(session.tags.length > 0 ? { Tags: session.tags.map((t) => ({ ...t })) } : {}),
      ...(session.policy !== undefined ? { Policy: session.policy } : {}),
      ...(role.policy_arns.length > 0 ? { PolicyArns: role.policy_arns.map((arn) => ({ arn })) } : {}),
      ...(externalId !== undefined ? { ExternalId: externalId } : {}),
    };

    let answer;
    try {
      answer = await this.sts.send(new AssumeRoleCommand(request));
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      const mapped = mapAwsError(err, { action: 'sts:AssumeRole', target: this.name, roleArn: role.role_arn, endpoint: stsEndpointOf(this.settings) });
      this.#logger.warn({ target: this.name, role: roleName, code: mapped.code, awsErrorCode: mapped.detail['awsErrorCode'] }, 'sts:AssumeRole failed');
      throw mapped;
    }

    const credentials = answer.Credentials;
    const assumed = answer.AssumedRoleUser;
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken || !credentials.Expiration || !assumed?.Arn) {
      throw new ProviderMisconfigured(`STS answered AssumeRole for ${role.role_arn} without credentials`, { target: this.name });
    }
    const expiration = credentials.Expiration.toISOString();
    return {
      credential: {
        accessKeyId: credentials.AccessKeyId,
        secretAccessKey: credentials.SecretAccessKey,
        sessionToken: credentials.SessionToken,
        expiration,
        region: this.settings.region,
        assumedRoleArn: assumed.Arn,
        revocable: false,
        note: STS_REVOCATION_NOTE,
      },
      providerRef: credentials.AccessKeyId,
      auditDetails: {
        access_key_id: credentials.AccessKeyId,
        assumed_role_id: assumed.AssumedRoleId ?? '',
        assumed_role_arn: assumed.Arn,
        session_name: session.roleSessionName,
        source_identity: session.sourceIdentity,
        role_arn: role.role_arn,
        duration_seconds: request.DurationSeconds as number,
        sts_expiration: expiration,
        ...(session.policySha256 ? { session_policy_sha256: session.policySha256 } : {}),
        ...(session.tags.length > 0 ? { session_tag_keys: session.tags.map((t) => t.Key) } : {}),
        ...(role.policy_arns.length > 0 ? { policy_arns: role.policy_arns } : {}),
      },
    };
  }

  /**
   * Succeeds without doing anything: STS cannot revoke one session. The
   * credential lapses at its expiration; `revokeOlderSessions` is the
   * role-wide cut-off (see STS_REVOCATION_NOTE).
   */
  async revoke(_input: RevokeInput): Promise<void> {}

  /** The IAM client for `revoke-sessions`, built on first use (issuing never needs it). */
  async iam(): Promise<IAMClient> {
    if (!this.#iam) {
      const { IAMClient } = await import('@aws-sdk/client-iam');
      this.#iam = new IAMClient({
        region: iamRegionOf(this.settings.region),
        ...(this.settings.iam_endpoint ? { endpoint: this.settings.iam_endpoint } : {}),
        requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
      });
    }
    return this.#iam;
  }

  publicInfo(): Readonly<Record<string, unknown>> {
    return { region: this.settings.region, roles: Object.keys(this.settings.roles), revocable: false, note: STS_REVOCATION_NOTE };
  }

  /** Ready when the default provider chain yields credentials (cached by the SDK; no AWS call). */
  async ready(): Promise<boolean> {
    try {
      const credentials = await this.sts.config.credentials();
      return Boolean(credentials.accessKeyId);
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.sts.destroy();
    this.#iam?.destroy();
  }
}
