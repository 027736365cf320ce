import { PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { InvalidRequest } from '../../errors.js';
import type { TargetProvider } from '../provider.js';
import { mapAwsError } from './aws-errors.js';
import { AwsTargetProvider, iamRegionOf } from './provider.js';

/**
 * The role-wide cut-off AWS documents for leaked or unwanted sessions
 * ("Revoking IAM role temporary security credentials"): an inline policy
 * named `AWSRevokeOlderSessions` that denies everything to sessions whose
 * `aws:TokenIssueTime` is before now. Sessions issued afterwards are not
 * affected; putting it again moves the cut-off forward.
 */

/** The inline policy name the IAM console itself uses for this. */
export const REVOKE_OLDER_SESSIONS_POLICY_NAME = 'AWSRevokeOlderSessions';

/** The policy document, denying every action to sessions issued before `cutoff`. */
export function revokeOlderSessionsPolicy(cutoff: Date): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Deny',
        Action: ['*'],
        Resource: ['*'],
        Condition: { DateLessThan: { 'aws:TokenIssueTime': cutoff.toISOString().replace(/\.\d{3}Z$/, 'Z') } },
      },
    ],
  });
}

export interface RevokedSessions {
  readonly target: string;
  readonly role: string;
  readonly roleArn: string;
  /** Sessions issued before this instant are denied everything. */
  readonly cutoff: string;
  readonly policyName: string;
}

/** The IAM role name in a role ARN (`arn:aws:iam::1:role/path/name` -> `name`). */
export function roleNameOfArn(roleArn: string): string {
  return roleArn.slice(roleArn.lastIndexOf('/') + 1);
}

/**
 * Denies every session of `role` on `target` issued before `now`, through
 * IAM PutRolePolicy with the broker's own credentials. Throws InvalidRequest
 * when the target is not an aws target, InvalidScope for an unknown role, and
 * ProviderMisconfigured/ProviderUnavailable when IAM refuses or is unreachable.
 */
export async function revokeOlderSessions(target: TargetProvider, role: string, now: Date): Promise<RevokedSessions> {
  if (!(target instanceof AwsTargetProvider)) {
    throw new InvalidRequest(`target ${target.name} is of kind ${target.kind}; revoke-sessions applies to aws targets`);
  }
  const settings = target.role(role);
  const iam = await target.iam();
  // Rounded up: a session issued earlier in the same second must not slip through.
  const cutoff = new Date(Math.ceil(now.getTime() / 1000) * 1000);
  try {
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: roleNameOfArn(settings.role_arn),
        PolicyName: REVOKE_OLDER_SESSIONS_POLICY_NAME,
        PolicyDocument: revokeOlderSessionsPolicy(cutoff),
      }),
    );
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    const endpoint = target.settings.iam_endpoint ?? `https://iam.amazonaws.com (${iamRegionOf(target.settings.region)})`;
    throw mapAwsError(err, { action: 'iam:PutRolePolicy', target: target.name, roleArn: settings.role_arn, endpoint });
  }
  return { target: target.name, role, roleArn: settings.role_arn, cutoff: cutoff.toISOString(), policyName: REVOKE_OLDER_SESSIONS_POLICY_NAME };
}
