import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * A local AWS STS (and IAM PutRolePolicy) endpoint over real HTTP, speaking
 * the Query protocol as AWS does: form-encoded POST in, XML out, errors as an
 * XML `ErrorResponse` with the HTTP status AWS uses and `x-amzn-RequestId`.
 *
 * Every request's SigV4 signature is recomputed with the SDK's own signer
 * (`@smithy/signature-v4`, `Sha256` from `@smithy/core`) and compared; a
 * request signed with unknown credentials, a wrong secret or a stale date is
 * refused like AWS refuses it. `GetCallerIdentity` answers only requests
 * signed with credentials this server issued, so a client that gets a
 * response really used what AssumeRole returned.
 */

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const ACCOUNT = '123456789012';
// AWS refuses a signature more than 15 minutes away from its clock.
const MAX_SKEW_MS = 15 * 60 * 1000;

/** Credentials the server accepts: the broker's own, and what it issued. */
export interface StsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

interface IssuedSession extends StsCredentials {
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly assumedRoleArn: string;
  readonly assumedRoleId: string;
  readonly sourceIdentity?: string;
}

/** One AssumeRole call as the server received it, decoded from the form. */
export interface AssumeRoleRecord {
  readonly signedBy: string;
  readonly region: string;
  readonly RoleArn: string;
  readonly RoleSessionName: string;
  readonly DurationSeconds?: number;
  readonly SourceIdentity?: string;
  readonly Policy?: string;
  readonly ExternalId?: string;
  readonly Tags: readonly { Key: string; Value: string }[];
  readonly PolicyArns: readonly string[];
  readonly TransitiveTagKeys: readonly string[];
}

export interface PutRolePolicyRecord {
  readonly signedBy: string;
  readonly region: string;
  readonly RoleName: string;
  readonly PolicyName: string;
  readonly PolicyDocument: string;
}

/** Errors the server can be told to answer with, with AWS's status and message. */
export const STS_ERRORS = {
  AccessDenied: { status: 403, type: 'Sender', message: (p: Params) => `User: arn:aws:iam::${ACCOUNT}:user/latchkey-broker is not authorized to perform: sts:AssumeRole on resource: ${p['RoleArn'] ?? 'unknown'}` },
  Throttling: { status: 400, type: 'Sender', message: () => 'Rate exceeded' },
  ExpiredToken: { status: 403, type: 'Sender', message: () => 'The security token included in the request is expired' },
  InvalidClientTokenId: { status: 403, type: 'Sender', message: () => 'The security token included in the request is invalid.' },
  SignatureDoesNotMatch: { status: 403, type: 'Sender', message: () => 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' },
  MalformedPolicyDocument: { status: 400, type: 'Sender', message: () => 'The policy is not in the valid JSON format.' },
  PackedPolicyTooLarge: { status: 400, type: 'Sender', message: () => 'Serialized token too large for session' },
  ServiceUnavailable: { status: 503, type: 'Receiver', message: () => 'Service is unavailable. Please try again later.' },
  NoSuchEntity: { status: 404, type: 'Sender', message: (p: Params) => `The role with name ${p['RoleName'] ?? 'unknown'} cannot be found.` },
} as const;
export type StsErrorCode = keyof typeof STS_ERRORS;

type Params = Readonly<Record<string, string>>;
type Action = 'AssumeRole' | 'GetCallerIdentity' | 'PutRolePolicy';

class QueryError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly type: 'Sender' | 'Receiver' = 'Sender',
  ) {
    super(message);
  }
}

function xml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function randomId(prefix: string, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(length);
  return prefix + [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

// "1 validation error detected: ..." is how STS words a parameter that breaks its model.
function validation(field: string, value: string, constraint: string): QueryError {
  return new QueryError('ValidationError', 400, `1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: ${constraint}`);
}

function members(params: Params, prefix: string, field: string): string[] {
  const out: string[] = [];
  for (let i = 1; params[`${prefix}.member.${i}.${field}`] !== undefined; i++) out.push(params[`${prefix}.member.${i}.${field}`] as string);
  return out;
}

function list(params: Params, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params[`${prefix}.member.${i}`] !== undefined; i++) out.push(params[`${prefix}.member.${i}`] as string);
  return out;
}

export interface LocalStsOptions {
  /** The broker's own identities (what the SDK's default chain will find in the environment). */
  readonly callers?: readonly StsCredentials[];
  /** Time of the server (credential expiry, signature skew). */
  readonly now?: () => Date;
}

/** A running local STS/IAM endpoint. */
export class LocalSts {
  readonly assumeRoleCalls: AssumeRoleRecord[] = [];
  readonly putRolePolicyCalls: PutRolePolicyRecord[] = [];
  /** Every request that reached the server, signed correctly or not. */
  readonly requests: { action: string; status: number }[] = [];
  readonly #callers = new Map<string, StsCredentials>();
  readonly #issued = new Map<string, IssuedSession>();
  readonly #failures: { action: Action; code: StsErrorCode; remaining: number }[] = [];
  readonly #expiredCallers = new Set<string>();
  readonly #now: () => Date;

  private constructor(
    readonly server: Server,
    readonly url: string,
    options: LocalStsOptions,
  ) {
    for (const c of options.callers ?? []) this.#callers.set(c.accessKeyId, c);
    this.#now = options.now ?? (() => new Date());
  }

  /** Starts the endpoint on 127.0.0.1 and a free port. */
  static async start(options: LocalStsOptions = {}): Promise<LocalSts> {
    const server = createServer();
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as AddressInfo;
    const sts = new LocalSts(server, `http://127.0.0.1:${port}`, options);
    server.on('request', (req, res) => void sts.#handle(req, res));
    return sts;
  }

  /** Adds an identity allowed to call AssumeRole (the broker's). */
  addCaller(credentials: StsCredentials): void {
    this.#callers.set(credentials.accessKeyId, credentials);
  }

  /** The next `times` calls of `action` fail with `code` (AWS's status and message). */
  failNext(action: Action, code: StsErrorCode, times = 1): void {
    this.#failures.push({ action, code, remaining: times });
  }

  /** From now on, requests signed with this caller's key are refused with ExpiredToken. */
  expireCaller(accessKeyId: string): void {
    this.#expiredCallers.add(accessKeyId);
  }

  /** What the server issued for an access key id (for assertions). */
  issued(accessKeyId: string): IssuedSession | undefined {
    return this.#issued.get(accessKeyId);
  }

  /** Forgets recorded calls and injected failures. */
  reset(): void {
    this.assumeRoleCalls.length = 0;
    this.putRolePolicyCalls.length = 0;
    this.requests.length = 0;
    this.#failures.length = 0;
    this.#expiredCallers.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const params: Params = Object.fromEntries(new URLSearchParams(body));
    const action = params['Action'] ?? '';
    let service = 'sts';
    try {
      if (req.method !== 'POST') throw new QueryError('InvalidAction', 400, 'Only POST requests are supported here');
      const signed = await this.#verifySignature(req, body);
      service = signed.service;
      const answer = await this.#dispatch(action, params, signed);
      this.#send(res, 200, answer(requestId), requestId, action);
    } catch (err) {
      const e = err instanceof QueryError ? err : new QueryError('InternalFailure', 500, (err as Error).message, 'Receiver');
      const ns = service === 'iam' ? IAM_NS : STS_NS;
      const xmlBody =
        `<ErrorResponse xmlns="${ns}">\n  <Error>\n    <Type>${e.type}</Type>\n    <Code>${xml(e.code)}</Code>\n    <Message>${xml(e.message)}</Message>\n  </Error>\n` +
        `  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`;
      this.#send(res, e.status, xmlBody, requestId, action);
    }
  }

  #send(res: ServerResponse, status: number, body: string, requestId: string, action: string): void {
    this.requests.push({ action, status });
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-RequestId': requestId, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Recomputes the SigV4 signature with the SDK's signer and the secret this server knows for the key. */
  async #verifySignature(req: IncomingMessage, body: string): Promise<{ accessKeyId: string; region: string; service: string; credentials: StsCredentials }> {
    const authorization = req.headers['authorization'] ?? '';
    const match = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization);
    if (!match) throw new QueryError('MissingAuthenticationToken', 403, 'Request is missing Authentication Token');
    const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = match as unknown as string[];
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const dateMatch = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!dateMatch) throw new QueryError('IncompleteSignature', 400, 'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.');
    const signingDate = new Date(`${dateMatch[1]}-${dateMatch[2]}-${dateMatch[3]}T${dateMatch[4]}:${dateMatch[5]}:${dateMatch[6]}Z`);
    if (amzDate.slice(0, 8) !== scopeDate) throw new QueryError('SignatureDoesNotMatch', 403, 'Credential scope date does not match X-Amz-Date');
    if (Math.abs(signingDate.getTime() - this.#now().getTime()) > MAX_SKEW_MS) {
      throw new QueryError('SignatureDoesNotMatch', 403, `Signature expired: ${amzDate} is now earlier than the allowed time window`);
    }

    const issued = this.#issued.get(accessKeyId as string);
    const credentials: StsCredentials | undefined = issued ?? this.#callers.get(accessKeyId as string);
    if (!credentials) throw new QueryError('InvalidClientTokenId', 403, STS_ERRORS.InvalidClientTokenId.message());

    const signedHeaders = (signedHeaderList as string).split(';');
    if (!signedHeaders.includes('host')) throw new QueryError('SignatureDoesNotMatch', 403, "'Host' must be a signed header");
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = req.headers[name];
      if (value === undefined) throw new QueryError('SignatureDoesNotMatch', 403, `signed header ${name} is missing`);
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const [hostname, port] = (headers['host'] as string).split(':');
    // The session token is compared below, so the signer must not add it on its own.
    const signer = new SignatureV4({
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      region: region as string,
      service: service as string,
      sha256: Sha256,
      applyChecksum: signedHeaders.includes('x-amz-content-sha256'),
    });
    const recomputed = await signer.sign(
      {
        method: req.method ?? 'POST',
        protocol: 'http:',
        hostname: hostname as string,
        ...(port ? { port: Number(port) } : {}),
        path: (req.url ?? '/').split('?')[0] as string,
        query: Object.fromEntries(new URLSearchParams((req.url ?? '').split('?')[1] ?? '')),
        headers,
        body,
      },
      { signingDate, signableHeaders: new Set(signedHeaders) },
    );
    const expected = /Signature=([0-9a-f]{64})$/.exec(recomputed.headers['authorization'] ?? '')?.[1] ?? '';
    const expectedList = /SignedHeaders=([^,]+),/.exec(recomputed.headers['authorization'] ?? '')?.[1];
    if (expectedList !== signedHeaderList || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature as string))) {
      throw new QueryError('SignatureDoesNotMatch', 403, STS_ERRORS.SignatureDoesNotMatch.message());
    }

    if (issued) {
      if (req.headers['x-amz-security-token'] !== issued.sessionToken || !signedHeaders.includes('x-amz-security-token')) {
        throw new QueryError('InvalidClientTokenId', 403, STS_ERRORS.InvalidClientTokenId.message());
      }
      if (issued.expiration.getTime() <= this.#now().getTime()) throw new QueryError('ExpiredToken', 403, STS_ERRORS.ExpiredToken.message());
    } else if (credentials.sessionToken !== undefined && req.headers['x-amz-security-token'] !== credentials.sessionToken) {
      throw new QueryError('InvalidClientTokenId', 403, STS_ERRORS.InvalidClientTokenId.message());
    }
    if (this.#expiredCallers.has(accessKeyId as string)) throw new QueryError('ExpiredToken', 403, STS_ERRORS.ExpiredToken.message());
    return { accessKeyId: accessKeyId as string, region: region as string, service: service as string, credentials };
  }

  #injected(action: Action, params: Params): void {
    const failure = this.#failures.find((f) => f.action === action && f.remaining > 0);
    if (!failure) return;
    failure.remaining -= 1;
    const spec = STS_ERRORS[failure.code];
    throw new QueryError(failure.code, spec.status, spec.message(params), spec.type);
  }

  async #dispatch(action: string, params: Params, signed: { accessKeyId: string; region: string; service: string }): Promise<(requestId: string) => string> {
    if (signed.service === 'iam') {
      if (action !== 'PutRolePolicy') throw new QueryError('InvalidAction', 400, `Could not find operation ${action} for version ${params['Version'] ?? ''}`);
      if (params['Version'] !== '2010-05-08') throw new QueryError('InvalidParameterValue', 400, 'IAM API version 2010-05-08 expected');
      return this.#putRolePolicy(params, signed);
    }
    if (signed.service !== 'sts') throw new QueryError('InvalidClientTokenId', 403, `credential scope names service ${signed.service}`);
    if (params['Version'] !== '2011-06-15') throw new QueryError('InvalidParameterValue', 400, 'STS API version 2011-06-15 expected');
    if (action === 'AssumeRole') return this.#assumeRole(params, signed);
    if (action === 'GetCallerIdentity') return this.#getCallerIdentity(signed);
    throw new QueryError('InvalidAction', 400, `Could not find operation ${action} for version 2011-06-15`);
  }

  #assumeRole(params: Params, signed: { accessKeyId: string; region: string }): (requestId: string) => string {
    if (this.#issued.has(signed.accessKeyId) === false && !this.#callers.has(signed.accessKeyId)) {
      throw new QueryError('InvalidClientTokenId', 403, STS_ERRORS.InvalidClientTokenId.message());
    }
    const record: AssumeRoleRecord = {
      signedBy: signed.accessKeyId,
      region: signed.region,
      RoleArn: params['RoleArn'] ?? '',
      RoleSessionName: params['RoleSessionName'] ?? '',
      ...(params['DurationSeconds'] !== undefined ? { DurationSeconds: Number(params['DurationSeconds']) } : {}),
      ...(params['SourceIdentity'] !== undefined ? { SourceIdentity: params['SourceIdentity'] } : {}),
      ...(params['Policy'] !== undefined ? { Policy: params['Policy'] } : {}),
      ...(params['ExternalId'] !== undefined ? { ExternalId: params['ExternalId'] } : {}),
      Tags: members(params, 'Tags', 'Key').map((Key, i) => ({ Key, Value: members(params, 'Tags', 'Value')[i] ?? '' })),
      PolicyArns: members(params, 'PolicyArns', 'arn'),
      TransitiveTagKeys: list(params, 'TransitiveTagKeys'),
    };
    this.assumeRoleCalls.push(record);
    this.#injected('AssumeRole', params);

    // STS's own model constraints, so a broker bug shows as the error AWS would give.
    const roleArn = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/.exec(record.RoleArn);
    if (!roleArn) throw validation('roleArn', record.RoleArn, 'Member must satisfy regular expression pattern: arn:aws:iam::\\d{12}:role/...');
    for (const [field, value] of [['roleSessionName', record.RoleSessionName], ['sourceIdentity', record.SourceIdentity]] as const) {
      if (value === undefined) continue;
      if (!/^[\w+=,.@-]*$/.test(value)) throw validation(field, value, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
      if (value.length < 2 || value.length > 64) throw validation(field, value, 'Member must have length between 2 and 64');
    }
    const duration = record.DurationSeconds ?? 3600;
    if (duration < 900 || duration > 43200) throw validation('durationSeconds', String(duration), 'Member must have value between 900 and 43200');
    if (record.Policy !== undefined) {
      if (record.Policy.replace(/\s/g, '').length > 2048) throw validation('policy', '...', 'Member must have length less than or equal to 2048');
      try {
        JSON.parse(record.Policy);
      } catch {
        const spec = STS_ERRORS.MalformedPolicyDocument;
        throw new QueryError('MalformedPolicyDocument', spec.status, spec.message());
      }
    }
    if (record.Tags.length > 50) throw validation('tags', `${record.Tags.length} tags`, 'Member must have length less than or equal to 50');
    for (const tag of record.Tags) {
      if (tag.Key.length < 1 || tag.Key.length > 128) throw validation('tags.member.key', tag.Key, 'Member must have length between 1 and 128');
      if (tag.Value.length > 256) throw validation('tags.member.value', tag.Value, 'Member must have length less than or equal to 256');
      if (!/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(tag.Key + tag.Value)) throw validation('tags.member', tag.Key, 'Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*');
    }
    if (record.PolicyArns.length > 10) throw validation('policyArns', `${record.PolicyArns.length} arns`, 'Member must have length less than or equal to 10');

    const accessKeyId = randomId('ASIA', 16);
    const roleName = roleArn[2] as string;
    const session: IssuedSession = {
      accessKeyId,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(96).toString('base64')}`,
      expiration: new Date(Math.floor(this.#now().getTime() / 1000) * 1000 + duration * 1000),
      assumedRoleArn: `arn:aws:sts::${roleArn[1]}:assumed-role/${roleName}/${record.RoleSessionName}`,
      assumedRoleId: `${randomId('AROA', 17)}:${record.RoleSessionName}`,
      ...(record.SourceIdentity !== undefined ? { sourceIdentity: record.SourceIdentity } : {}),
    };
    this.#issued.set(accessKeyId, session);
    const packed = record.Policy || record.Tags.length ? Math.min(100, Math.ceil(((record.Policy?.length ?? 0) + record.Tags.length * 40) / 20)) : undefined;
    return (requestId) =>
      `<AssumeRoleResponse xmlns="${STS_NS}">\n  <AssumeRoleResult>\n` +
      (session.sourceIdentity !== undefined ? `    <SourceIdentity>${xml(session.sourceIdentity)}</SourceIdentity>\n` : '') +
      `    <AssumedRoleUser>\n      <AssumedRoleId>${xml(session.assumedRoleId)}</AssumedRoleId>\n      <Arn>${xml(session.assumedRoleArn)}</Arn>\n    </AssumedRoleUser>\n` +
      `    <Credentials>\n      <AccessKeyId>${session.accessKeyId}</AccessKeyId>\n      <SecretAccessKey>${xml(session.secretAccessKey)}</SecretAccessKey>\n` +
      `      <SessionToken>${xml(session.sessionToken)}</SessionToken>\n      <Expiration>${session.expiration.toISOString().replace('.000Z', 'Z')}</Expiration>\n    </Credentials>\n` +
      (packed !== undefined ? `    <PackedPolicySize>${packed}</PackedPolicySize>\n` : '') +
      `  </AssumeRoleResult>\n  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n`;
  }

  #getCallerIdentity(signed: { accessKeyId: string }): (requestId: string) => string {
    this.#injected('GetCallerIdentity', {});
    const session = this.#issued.get(signed.accessKeyId);
    // Only what this server issued: the broker's own identity is not answered, so success proves the client used issued credentials.
    if (!session) throw new QueryError('InvalidClientTokenId', 403, STS_ERRORS.InvalidClientTokenId.message());
    return (requestId) =>
      `<GetCallerIdentityResponse xmlns="${STS_NS}">\n  <GetCallerIdentityResult>\n    <Arn>${xml(session.assumedRoleArn)}</Arn>\n` +
      `    <UserId>${xml(session.assumedRoleId)}</UserId>\n    <Account>${ACCOUNT}</Account>\n  </GetCallerIdentityResult>\n` +
      `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n`;
  }

  #putRolePolicy(params: Params, signed: { accessKeyId: string; region: string }): (requestId: string) => string {
    if (!this.#callers.has(signed.accessKeyId)) throw new QueryError('AccessDenied', 403, `User: ${signed.accessKeyId} is not authorized to perform: iam:PutRolePolicy`);
    this.putRolePolicyCalls.push({
      signedBy: signed.accessKeyId,
      region: signed.region,
      RoleName: params['RoleName'] ?? '',
      PolicyName: params['PolicyName'] ?? '',
      PolicyDocument: params['PolicyDocument'] ?? '',
    });
    this.#injected('PutRolePolicy', params);
    try {
      JSON.parse(params['PolicyDocument'] ?? '');
    } catch {
      throw new QueryError('MalformedPolicyDocument', 400, 'Syntax errors in policy.');
    }
    return (requestId) => `<PutRolePolicyResponse xmlns="${IAM_NS}">\n  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</PutRolePolicyResponse>\n`;
  }
}
