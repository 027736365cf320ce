import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { LOG_REDACTION, REDACTED, Secret, isSecretKey, redactSecrets, withoutUrlPasswords } from '../src/secret.js';

// The broker's own logger options, writing into memory: what these tests read is the line pino prints.
function captureLogs(): { logger: Logger; lines: () => Record<string, any>[]; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = pino({ level: 'trace', ...LOG_REDACTION, base: { service: 'latchkey' } }, sink);
  return { logger, text: () => text, lines: () => text.trim().split('\n').map((line) => JSON.parse(line)) };
}

function logOne(object: object, message = 'event'): Record<string, any> {
  const { logger, lines } = captureLogs();
  logger.info(object, message);
  const [line] = lines();
  return line as Record<string, any>;
}

/** An audit record as the audit stream logs it, with a password that should never have reached it. */
function auditRecord() {
  return {
    seq: 41,
    time: '2026-11-26T02:42:16.989Z',
    type: 'grant.issued',
    outcome: 'success',
    subject: 'repo:acme/api:ref:refs/heads/main',
    claims: { repository: 'acme/api', jti: 'b7d1c0de-5a2f-4e61-9c3b-2f1e0d9c8b7a' },
    tokenHash: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    kind: 'postgres',
    target: 'warehouse',
    scope: { database: 'demo', tables: ['demo.orders'], csr: '-----BEGIN CERTIFICATE REQUEST-----' },
    details: { role: 'lk_7f3a', password: 'hunter2-hunter2-hunter2' },
  };
}

describe('secrets in log lines', () => {
  it('prints a password nested in an audit event as [redacted], and keeps tokenHash, jti, csr and the other fields', () => {
    const line = logOne({ audit: auditRecord() }, 'grant.issued');
    expect(line['audit'].details).toEqual({ role: 'lk_7f3a', password: REDACTED });
    expect(line['audit'].tokenHash).toBe('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
    expect(line['audit'].claims).toEqual({ repository: 'acme/api', jti: 'b7d1c0de-5a2f-4e61-9c3b-2f1e0d9c8b7a' });
    expect(line['audit'].scope).toEqual({ database: 'demo', tables: ['demo.orders'], csr: '-----BEGIN CERTIFICATE REQUEST-----' });
    expect(line['audit'].seq).toBe(41);
    expect(line['msg']).toBe('grant.issued');
    expect(line['service']).toBe('latchkey');
  });

  it('prints the authorization header of an HTTP client error as [redacted], and keeps the error type, message, stack and URL', () => {
    class HttpClientError extends Error {
      config = { url: 'https://sts.example/', headers: { Authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.secret.sig', accept: 'application/json' } };
    }
    const err = new HttpClientError('request failed with status 500');
    const line = logOne({ err }, 'upstream failed');
    expect(line['err'].config.headers).toEqual({ Authorization: REDACTED, accept: 'application/json' });
    expect(line['err'].config.url).toBe('https://sts.example/');
    expect(line['err'].type).toBe('HttpClientError');
    expect(line['err'].message).toBe('request failed with status 500');
    expect(line['err'].stack).toContain('request failed with status 500');
  });

  it('prints err.config.headers.authorization as [redacted] when err is a plain object too', () => {
    const line = logOne({ err: { message: 'boom', config: { headers: { authorization: 'Basic dXNlcjpwYXNz' } } } });
    expect(line['err'].config.headers.authorization).toBe(REDACTED);
    expect(line['err'].message).toBe('boom');
  });

  it('prints SessionToken and SecretAccessKey in an array of objects as [redacted], and keeps AccessKeyId', () => {
    const sessions = [
      { AccessKeyId: 'ASIAEXAMPLE1', SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY1', SessionToken: 'FwoGZXIvYXdzEJr//////////1' },
      { AccessKeyId: 'ASIAEXAMPLE2', SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY2', SessionToken: 'FwoGZXIvYXdzEJr//////////2' },
    ];
    const line = logOne({ response: { sessions } });
    expect(line['response'].sessions).toEqual([
      { AccessKeyId: 'ASIAEXAMPLE1', SecretAccessKey: REDACTED, SessionToken: REDACTED },
      { AccessKeyId: 'ASIAEXAMPLE2', SecretAccessKey: REDACTED, SessionToken: REDACTED },
    ]);
  });

  it('prints a password twelve levels down as [redacted]', () => {
    let deep: Record<string, unknown> = { password: 'deep-secret-value', note: 'kept' };
    for (let level = 0; level < 11; level += 1) deep = { [`level${level}`]: deep };
    const text = JSON.stringify(logOne({ deep }));
    expect(text).not.toContain('deep-secret-value');
    expect(text).toContain(`"password":"${REDACTED}","note":"kept"`);
  });

  it('cuts off nesting past 16 levels with a marker instead of printing it unexamined', () => {
    let deep: Record<string, unknown> = { secretValue: 'x', anything: 'past the limit' };
    for (let level = 0; level < 20; level += 1) deep = { next: deep };
    const text = JSON.stringify(logOne({ deep }));
    expect(text).toContain('"[depth limit]"');
    expect(text).not.toContain('past the limit');
  });

  it('cuts off a line past 10,000 entries with a marker', () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ i, token: `t-${i}` }));
    const line = logOne({ rows });
    expect(line['rows'].at(-1)).toBe('[size limit]');
    expect(line['rows'][0]).toEqual({ i: 0, token: REDACTED });
    expect(JSON.stringify(line)).not.toMatch(/t-\d/);
  });

  it('prints a cyclic object once, with [Circular] where it refers to itself, and its secrets redacted', () => {
    const session: Record<string, unknown> = { user: 'alice', cookie: 'sid=abcdef0123456789' };
    session['self'] = session;
    const line = logOne({ session });
    expect(line['session']).toEqual({ user: 'alice', cookie: REDACTED, self: '[Circular]' });
  });

  it('redacts the errors inside an AggregateError that pino prints', () => {
    const inner = Object.assign(new Error('one failed'), { request: { headers: { 'x-api-key': 'k-0123456789abcdef' } } });
    const line = logOne({ err: new AggregateError([inner], 'all failed') });
    expect(line['err'].aggregateErrors[0].request.headers['x-api-key']).toBe(REDACTED);
    expect(line['err'].aggregateErrors[0].message).toBe('one failed');
    expect(line['err'].message).toBe('all failed');
  });

  it('still prints Secret values, dates and the top-level secret fields the old redact paths covered', () => {
    const line = logOne({ password: 'top-level-pw', key: 'pem body', wrapped: { value: new Secret('s3cr3t-value') }, at: new Date('2026-01-02T03:04:05.000Z') });
    expect(line).toMatchObject({ password: REDACTED, key: REDACTED, wrapped: { value: REDACTED }, at: '2026-01-02T03:04:05.000Z' });
  });

  it('never changes the object the caller logged', () => {
    const record = auditRecord();
    const err = Object.assign(new Error('failed'), { config: { headers: { authorization: 'Bearer abc.def.ghi' } } });
    const before = structuredClone({ record, config: err.config });
    const { logger } = captureLogs();
    logger.info({ audit: record, err }, 'grant.issued');
    expect({ record, config: err.config }).toEqual(before);
    expect(err).toBeInstanceOf(Error);
  });

  it('hands back an object that holds no secret as it is, without copying it', () => {
    const event = { ...auditRecord(), details: { role: 'lk_7f3a' } };
    expect(redactSecrets(event)).toBe(event);
  });

  it('refuses a child logger bound to a secret, and prints the bindings of an ordinary one', () => {
    const { logger, lines } = captureLogs();
    expect(() => logger.child({ target: 'mesh', auth: { sessionToken: 'FwoGZXIv' } })).toThrow(/secret under auth/);
    logger.child({ stream: 'audit' }).info({ audit: auditRecord() }, 'grant.issued');
    const [line] = lines();
    expect(line).toMatchObject({ stream: 'audit', audit: { details: { password: REDACTED } } });
  });
});

describe('which keys name a secret', () => {
  it.each([
    'password', 'Password', 'passwd', 'pkcs12Password', 'secret', 'client_secret', 'clientSecret', 'secretAccessKey', 'SecretAccessKey',
    'aws_secret_access_key', 'sessionToken', 'SessionToken', 'token', 'id_token', 'access_token', 'refresh_token', 'x-amz-security-token',
    'authorization', 'Authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'Set-Cookie', 'private_key', 'privateKey', 'key',
    'key_pem', 'pkcs12', 'x-api-key', 'credential', 'credentials',
  ])('%s is a secret', (key) => {
    expect(isSecretKey(key)).toBe(true);
  });

  it.each(['tokenHash', 'jti', 'csr', 'key_type', 'key_source', 'access_key_id', 'AccessKeyId', 'publicKey', 'serial', 'role', 'subject', 'policyHash'])(
    '%s is not',
    (key) => {
      expect(isSecretKey(key)).toBe(false);
    },
  );
});

describe('passwords in URLs quoted by other libraries', () => {
  it('are taken out, keeping user, host and the rest of the message', () => {
    expect(withoutUrlPasswords('could not connect to postgres://latchkey:s3cr%40t@db.internal:5432/latchkey (timeout)')).toBe(
      `could not connect to postgres://latchkey:${REDACTED}@db.internal:5432/latchkey (timeout)`,
    );
    expect(withoutUrlPasswords('a: https://u:p@a.example/x and b: postgresql://v:q@b.example/y')).toBe(`a: https://u:${REDACTED}@a.example/x and b: postgresql://v:${REDACTED}@b.example/y`);
  });

  it('are taken out of any logged string and of error messages and stacks', () => {
    const { logger, text } = captureLogs();
    const err = new Error('could not connect to postgres://latchkey:hunter2-secret@db.internal/latchkey');
    logger.error({ err, target: { admin: 'postgres://admin:hunter3-secret@db.internal/postgres' } }, 'target unavailable');
    const line = text();
    expect(line).not.toContain('hunter2-secret');
    expect(line).not.toContain('hunter3-secret');
    expect(line).toContain(`postgres://latchkey:${REDACTED}@db.internal/latchkey`);
    expect(line).toContain(`postgres://admin:${REDACTED}@db.internal/postgres`);
    expect(err.message).toContain('hunter2-secret'); // the caller's error is left alone
  });

  it('are taken out of the log message and its format arguments', () => {
    const { logger, text } = captureLogs();
    logger.warn('admin URL postgres://admin:hunter4-secret@db.internal/postgres is unreachable');
    logger.warn({ target: 'warehouse' }, 'cannot reach %s', 'postgres://admin:hunter5-secret@db.internal/postgres');
    const printed = text();
    expect(printed).not.toMatch(/hunter[45]-secret/);
    expect(printed).toContain(`admin URL postgres://admin:${REDACTED}@db.internal/postgres is unreachable`);
    expect(printed).toContain(`cannot reach postgres://admin:${REDACTED}@db.internal/postgres`);
  });

  it('leave a URL without a password, and plain text, as they are', () => {
    for (const text of ['postgres://latchkey@db.internal/latchkey', 'https://db.internal:5432/x', 'connect ECONNREFUSED 127.0.0.1:5432', 'user:name@example.com']) {
      expect(withoutUrlPasswords(text)).toBe(text);
    }
  });
});
