import type { ConditionFailure } from '../../policy/types.js';
import type { ProviderKind, ScopeCheckInput } from '../provider.js';
import { renderSession } from './session.js';
import { awsAllowSchema, awsScopeSchema, awsTargetSchema, type AwsAllow, type AwsScope, type AwsTarget } from './settings.js';

/**
 * The `aws` kind: temporary credentials from STS AssumeRole, narrowed by a
 * session policy rendered from the caller's claims, with SourceIdentity and
 * session tags so CloudTrail shows who. See `provider.ts` for issuing and
 * `revoke-sessions.ts` for the role-wide cut-off.
 */
export const awsKind: ProviderKind<AwsTarget, AwsAllow, AwsScope> = {
  kind: 'aws',
  targetSchema: awsTargetSchema,
  allowSchema: awsAllowSchema,
  scopeSchema: awsScopeSchema,

  checkScope({ target, allow, scope, claims }: ScopeCheckInput<AwsTarget, AwsAllow, AwsScope>): ConditionFailure | null {
    if (!allow.roles.includes(scope.role)) {
      return {
        condition: 'allow.roles',
        field: 'scope.role',
        expected: allow.roles,
        actual: scope.role,
        message: `the rule allows roles ${allow.roles.join(', ')}, not "${scope.role}"`,
      };
    }
    const role = Object.hasOwn(target.roles, scope.role) ? target.roles[scope.role] : undefined;
    if (!role) {
      return {
        condition: 'target.roles',
        field: 'scope.role',
        expected: Object.keys(target.roles),
        actual: scope.role,
        message: `the target has no role "${scope.role}"`,
      };
    }
    // The session name default comes from `sub` here; `issue` uses the issuer's subject claim, which defaults to it.
    const subject = typeof claims['sub'] === 'string' ? claims['sub'] : '';
    const rendered = renderSession(role, claims, subject, `target.roles.${scope.role}`);
    return rendered.ok ? null : rendered.failure;
  },

  async open(name, target, deps) {
    // The AWS SDK loads only when an aws target opens: other verbs and brokers without one start without it.
    const { AwsTargetProvider } = await import('./provider.js');
    return new AwsTargetProvider(name, target, deps);
  },
};

// The SDK-backed parts (AwsTargetProvider in provider.js, revokeOlderSessions in revoke-sessions.js) are imported from their files.
export type { AwsTargetProvider } from './provider.js';
export type { RevokedSessions } from './revoke-sessions.js';
export { renderSession, sessionNameFromSubject, type RenderedSession, type RenderResult } from './session.js';
export { STS_LIMITS, STS_REVOCATION_NOTE, type AwsAllow, type AwsRoleSettings, type AwsScope, type AwsTarget } from './settings.js';
