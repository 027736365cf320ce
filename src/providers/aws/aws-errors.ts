import { ProviderMisconfigured, ProviderUnavailable, TemplateError, type LatchkeyError } from '../../errors.js';

/**
 * Turns what the AWS SDK threw into one of latchkey's errors, with a message
 * an operator can act on. Messages name the role, the endpoint and the AWS
 * error code; they never carry credentials (AWS error messages do not either).
 */

export interface AwsCallContext {
  /** `sts:AssumeRole`, `iam:PutRolePolicy`. */
  readonly action: string;
  readonly target: string;
  readonly roleArn: string;
  readonly endpoint: string;
}

// Codes the SDK treats as throttling (and retries with back-off before giving up).
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
  'PriorRequestNotComplete',
  'LimitExceeded',
  'LimitExceededException',
]);
// Network failures Node and the SDK's handler report by code or name.
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'TimeoutError', 'RequestTimeout']);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; attempts?: number; requestId?: string };
}

/** Maps an AWS SDK failure to ProviderMisconfigured (502), ProviderUnavailable (503) or TemplateError (403). */
export function mapAwsError(err: unknown, call: AwsCallContext): LatchkeyError {
  const e = (err ?? {}) as SdkErrorShape;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const attempts = e.$metadata?.attempts;
  const awsSays = `AWS said ${name}${e.message ? `: ${e.message}` : ''}`;
  const detail = {
    target: call.target,
    roleArn: call.roleArn,
    awsErrorCode: name,
    ...(e.$metadata?.requestId ? { awsRequestId: e.$metadata.requestId } : {}),
  };
  const options = { cause: err };

  if (name === 'CredentialsProviderError') {
    return new ProviderMisconfigured(
      `the broker has no AWS credentials of its own: the SDK's default provider chain (environment, web identity, container or instance profile) found none (target ${call.target}); this is an operator problem`,
      detail,
      options,
    );
  }
  if (status === undefined && (NETWORK.has(name) || NETWORK.has(e.code ?? '') || e.$fault === undefined)) {
    return new ProviderUnavailable(`cannot reach ${call.action.split(':')[0]?.toUpperCase()} at ${call.endpoint} (${e.code ?? name}); try again shortly`, { ...detail, endpoint: call.endpoint }, options);
  }
  if (THROTTLING.has(name)) {
    return new ProviderUnavailable(
      `AWS throttled the broker's ${call.action} calls${attempts ? ` (gave up after ${attempts} attempts)` : ''}; try again shortly`,
      { ...detail, retryAfterSeconds: 5 },
      options,
    );
  }
  switch (name) {
    case 'AccessDenied':
    case 'AccessDeniedException':
      return new ProviderMisconfigured(
        `the broker's AWS identity may not ${call.action} on ${call.roleArn} (${awsSays}); this is an operator problem: the role's trust policy (or the broker's IAM permissions) must allow the broker`,
        detail,
        options,
      );
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'RequestExpired':
      return new ProviderMisconfigured(
        `the broker's own AWS credentials have expired (${awsSays}); this is an operator problem: the broker's credential source (environment, web identity, instance profile) must be refreshed`,
        detail,
        options,
      );
    case 'InvalidClientTokenId':
    case 'UnrecognizedClientException':
    case 'SignatureDoesNotMatch':
    case 'IncompleteSignature':
    case 'InvalidAccessKeyId':
      return new ProviderMisconfigured(
        `the broker's own AWS credentials are invalid (${awsSays}); this is an operator problem`,
        detail,
        options,
      );
    case 'RegionDisabledException':
      return new ProviderMisconfigured(`STS is not activated in this account's region for target ${call.target} (${awsSays}); an operator must activate it or use another region`, detail, options);
    case 'MalformedPolicyDocument':
    case 'MalformedPolicyDocumentException':
      return new ProviderMisconfigured(`AWS refused the session policy rendered for ${call.roleArn} (${awsSays}); the target's session_policy needs fixing`, detail, options);
    case 'PackedPolicyTooLarge':
    case 'PackedPolicyTooLargeException':
      return new TemplateError(
        `the session policy and session tags for ${call.roleArn} exceed STS's packed size limit (${awsSays}); fewer or shorter tags or a shorter policy are needed`,
        { ...detail, limit: 'packed policy size' },
        options,
      );
    case 'NoSuchEntity':
    case 'NoSuchEntityException':
      return new ProviderMisconfigured(`AWS has no role ${call.roleArn} (${awsSays}); the target's role_arn needs fixing`, detail, options);
    case 'ValidationError':
    case 'InvalidParameterValue':
      return new ProviderMisconfigured(`AWS refused the broker's ${call.action} request for ${call.roleArn} (${awsSays})`, detail, options);
  }
  if (e.$fault === 'server' || (status !== undefined && status >= 500)) {
    return new ProviderUnavailable(`AWS failed to answer ${call.action} (${awsSays}); try again shortly`, detail, options);
  }
  return new ProviderMisconfigured(`AWS refused the broker's ${call.action} request for ${call.roleArn} (${awsSays})`, detail, options);
}
