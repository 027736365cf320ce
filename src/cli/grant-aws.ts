import { InvalidRequest } from '../errors.js';
import { connectToBroker } from './client.js';
import { claimApprovedGrant, reportPending, reportWarnings, requestGrant } from './grant-request.js';
import { parseVerbArgs, type CliIO, type CliVerb } from './io.js';

/**
 * `latchkey grant aws --target T --role R [--format env|json|credential-process|github]`:
 * asks the broker for STS credentials and prints them the way the consumer
 * expects: shell exports, the broker's JSON, the AWS CLI's `credential_process`
 * JSON, or (inside GitHub Actions) masked values in `$GITHUB_ENV`/`$GITHUB_OUTPUT`.
 * A role whose rule needs approval answers with the grant's id (exit 3);
 * `--claim ID` collects it once someone has approved it.
 */

/** The `credential` of an aws grant, as the broker returns it. */
export interface AwsCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** ISO 8601. */
  readonly expiration: string;
  readonly region: string;
  readonly assumedRoleArn: string;
  readonly revocable?: boolean;
  readonly note?: string;
}

/** A granted aws request: the grant's id and expiry, and the credential. */
export interface AwsGrant {
  readonly id: string;
  readonly expiresAt: string;
  readonly credential: AwsCredential;
  /** The whole response body, for `--format json`. */
  readonly body: Readonly<Record<string, unknown>>;
}

export const AWS_FORMATS = ['env', 'json', 'credential-process', 'github'] as const;
export type AwsFormat = (typeof AWS_FORMATS)[number];

export type AwsGrantRequest =
  | { readonly url: string; readonly token: string; readonly target: string; readonly role: string; readonly ttl?: string; readonly reason?: string }
  /** Collects a grant someone has approved (POST /v1/grants/{id}/claim). */
  | { readonly url: string; readonly token: string; readonly claim: string };

/** The answer to a request whose rule needs someone else's approval first: no credential yet. */
export class AwsGrantPending extends InvalidRequest {
  constructor(readonly grantId: string) {
    super(`grant ${grantId} waits for approval by someone with the approver role (latchkey approve ${grantId}); once approved, collect it with: latchkey grant aws --claim ${grantId}`);
  }
}

/**
 * POST /v1/grants for an aws role, or the claim of an approved one; AwsGrantPending
 * when approval is needed first. The broker's warnings go to `io`'s stderr.
 */
export async function requestAwsGrant(request: AwsGrantRequest, io: CliIO): Promise<AwsGrant> {
  const answer =
    'claim' in request
      ? await claimApprovedGrant<Partial<AwsCredential>>(request.url, request.token, request.claim)
      : await requestGrant<Partial<AwsCredential>>(request.url, request.token, {
          kind: 'aws',
          target: request.target,
          scope: { role: request.role },
          ...(request.ttl ? { ttl: request.ttl } : {}),
          ...(request.reason ? { reason: request.reason } : {}),
        });
  reportWarnings(io, answer);
  const credential = answer.credential;
  if (!credential) {
    if (answer.status === 'pending_approval') throw new AwsGrantPending(answer.id);
    throw new InvalidRequest(`the broker answered without a credential (grant ${answer.id}, status ${answer.status})`);
  }
  for (const field of ['accessKeyId', 'secretAccessKey', 'sessionToken', 'expiration'] as const) {
    if (typeof credential[field] !== 'string') throw new InvalidRequest(`the broker's aws credential lacks ${field}`);
  }
  return { id: answer.id, expiresAt: answer.expiresAt ?? credential.expiration, credential: credential as AwsCredential, body: answer as unknown as Readonly<Record<string, unknown>> };
}

/** The AWS CLI/SDK `credential_process` document, exactly: Version 1 and the four fields. */
export function credentialProcessJson(credential: AwsCredential): string {
  return `${JSON.stringify({
    Version: 1,
    AccessKeyId: credential.accessKeyId,
    SecretAccessKey: credential.secretAccessKey,
    SessionToken: credential.sessionToken,
    Expiration: new Date(credential.expiration).toISOString(),
  })}\n`;
}

// Single quotes keep a shell from expanding anything; a quote inside is closed, escaped and reopened.
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The environment variables AWS SDKs and the CLI read, for this credential. */
export function awsEnvironment(credential: AwsCredential): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: credential.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
    AWS_SESSION_TOKEN: credential.sessionToken,
    AWS_CREDENTIAL_EXPIRATION: credential.expiration,
    ...(credential.region ? { AWS_REGION: credential.region, AWS_DEFAULT_REGION: credential.region } : {}),
  };
}

/** `export NAME='value'` lines for `eval "$(latchkey grant aws ...)"`. */
export function shellExports(credential: AwsCredential): string {
  return Object.entries(awsEnvironment(credential))
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join('');
}

/** Writes one grant in the chosen format. Secrets go to stdout (or GitHub's files), notes to stderr. */
export async function writeAwsGrant(grant: AwsGrant, format: AwsFormat, io: CliIO): Promise<void> {
  const { credential } = grant;
  switch (format) {
    case 'credential-process':
      io.stdout.write(credentialProcessJson(credential));
      return;
    case 'json':
      io.stdout.write(`${JSON.stringify(grant.body, null, 2)}\n`);
      return;
    case 'env':
      io.stdout.write(shellExports(credential));
      io.stderr.write(`latchkey: grant ${grant.id}: ${credential.assumedRoleArn}, key ${credential.accessKeyId}, expires ${credential.expiration}\n`);
      return;
    case 'github': {
      const { publishToGitHub } = await import('./github-actions.js');
      await publishToGitHub(io, {
        secrets: [credential.accessKeyId, credential.secretAccessKey, credential.sessionToken],
        env: awsEnvironment(credential),
        outputs: {
          'aws-grant-id': grant.id,
          'aws-access-key-id': credential.accessKeyId,
          'aws-secret-access-key': credential.secretAccessKey,
          'aws-session-token': credential.sessionToken,
          'aws-expiration': credential.expiration,
          'aws-region': credential.region,
          'aws-assumed-role-arn': credential.assumedRoleArn,
        },
      });
      io.stdout.write(`latchkey: grant ${grant.id}: AWS credentials for ${credential.assumedRoleArn} (expire ${credential.expiration}) are in the job's environment\n`);
      return;
    }
  }
}

const options = {
  target: { type: 'string' },
  role: { type: 'string' },
  format: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  audience: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  claim: { type: 'string' },
} as const;

export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('grant aws', args, options);
  const target = values['target'] as string | undefined;
  const role = values['role'] as string | undefined;
  const claim = values['claim'] as string | undefined;
  if (claim && (target || role)) throw new InvalidRequest('latchkey grant aws: --claim collects an approved grant, whose target and role were chosen when it was requested; drop --target and --role');
  if (!claim && (!target || !role)) throw new InvalidRequest('latchkey grant aws: --target and --role are required');
  const format = (values['format'] as string | undefined) ?? 'env';
  if (!(AWS_FORMATS as readonly string[]).includes(format)) {
    throw new InvalidRequest(`latchkey grant aws: --format must be one of ${AWS_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  }
  const { url, token } = await connectToBroker(values, io, 'issue');
  let grant: AwsGrant;
  try {
    grant = await requestAwsGrant(
      claim
        ? { url, token, claim }
        : {
            url,
            token,
            target: target as string,
            role: role as string,
            ...(values['ttl'] ? { ttl: values['ttl'] as string } : {}),
            ...(values['reason'] ? { reason: values['reason'] as string } : {}),
          },
      io,
    );
  } catch (err) {
    if (!(err instanceof AwsGrantPending)) throw err;
    return reportPending(io, { id: err.grantId }, `latchkey grant aws --claim ${err.grantId} --format ${format}`);
  }
  await writeAwsGrant(grant, format as AwsFormat, io);
  return 0;
};
