import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { z } from 'zod';
import { epochSeconds, systemClock, type Clock } from '../clock.js';
import { IssuerUnavailable, LoginRequired } from '../errors.js';

/**
 * The engineer's sign-in on this laptop, one file per broker:
 * `$XDG_CONFIG_HOME/latchkey/session-<broker host>.json` (default
 * `~/.config/latchkey/`), folder 0700, file 0600, replaced atomically.
 *
 * It holds the ID token latchkey presents and the refresh token that renews
 * it; never an access token. Issuers default to single-use `jti`, so an ID
 * token serves one credential-issuing call (`used`) and any number of reads.
 */

/** Why a command wants the token: `issue` burns the token's jti at the broker, `read` does not. */
export type TokenPurpose = 'issue' | 'read';

/** Refresh an ID token that expires sooner than this: it must survive the trip to the broker and its leeway. */
const EXPIRY_MARGIN_SECONDS = 60;
/** The IdP must answer well within this; a hung IdP should fail the command, not freeze it. */
const IDP_TIMEOUT_SECONDS = 30;
/** Another latchkey process holding the lock longer than this has died (a refresh takes at most IDP_TIMEOUT). */
const STALE_LOCK_MS = 2 * IDP_TIMEOUT_SECONDS * 1000;

const sessionIssuerSchema = z.strictObject({
  name: z.string().min(1),
  issuer: z.url(),
  client_id: z.string().min(1),
  discovery_url: z.url().optional(),
  allow_insecure_http: z.literal(true).optional(),
});
/** The IdP a session came from: enough to refresh and revoke without asking the broker. */
export type SessionIssuer = z.infer<typeof sessionIssuerSchema>;

const storedSessionSchema = z.strictObject({
  version: z.literal(1),
  broker: z.string().min(1),
  issuer: sessionIssuerSchema,
  id_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  /** The ID token's `exp`, ISO 8601. */
  expires_at: z.iso.datetime(),
  /** True once the ID token went to a credential-issuing call (its jti is spent). */
  used: z.boolean(),
});
export type StoredSession = z.infer<typeof storedSessionSchema>;

type Env = Readonly<Record<string, string | undefined>>;

/** The folder holding sessions: `$XDG_CONFIG_HOME/latchkey`, else `~/.config/latchkey`. */
export function sessionDirectory(env: Env): string {
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'latchkey');
}

/** Where the session for the broker at `brokerUrl` lives; the host (and port) names the file. */
export function sessionFilePath(brokerUrl: string, env: Env): string {
  const host = new URL(brokerUrl).host.toLowerCase().replace(/[^a-z0-9.-]/g, '_');
  return join(sessionDirectory(env), `session-${host}.json`);
}

/** The stored session, or undefined when there is none. A file that is not a session is an error that says where. */
export function readSession(path: string): StoredSession | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LoginRequired(`cannot read the sign-in at ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const result = storedSessionSchema.safeParse(parsed);
  if (!result.success) throw new LoginRequired(`the sign-in at ${path} is damaged; run latchkey login again`);
  return result.data;
}

/** Writes the session atomically (temporary file, fsync, rename) with mode 0600 in a 0700 folder. */
export function writeSession(path: string, session: StoredSession): void {
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing folder's mode alone; this one holds only latchkey's sign-ins.
  chmodSync(dir, 0o700);
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(storedSessionSchema.parse(session), null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/** Removes the session; true when there was one. */
export function deleteSession(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Runs `fn` while holding `<path>.lock`, so two latchkey processes (the AWS
 * CLI may start several credential_process runs at once) neither hand out the
 * same single-use ID token nor spend one rotating refresh token twice.
 */
export async function withSessionLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  // Wall-clock time on purpose: it is compared with file modification times.
  const giveUpAt = Date.now() + STALE_LOCK_MS + 5000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = lockAge(lock);
      if (age !== undefined && age > STALE_LOCK_MS) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > giveUpAt) throw new LoginRequired(`another latchkey process holds ${lock}; remove it if no latchkey is running`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function lockAge(lock: string): number | undefined {
  try {
    return Date.now() - statSync(lock).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * The IdP's metadata through OIDC discovery, as a public client (no secret).
 * ID token signatures are checked against the IdP's JWKS, not only trusted
 * because they came over TLS.
 */
export async function discoverIdp(issuer: SessionIssuer): Promise<oidc.Configuration> {
  const client = await import('openid-client');
  const discoveryUrl = new URL(issuer.discovery_url ?? issuer.issuer);
  try {
    const configuration = await client.discovery(discoveryUrl, issuer.client_id, undefined, client.None(), {
      execute: [client.enableNonRepudiationChecks, ...(issuer.allow_insecure_http ? [client.allowInsecureRequests] : [])],
      timeout: IDP_TIMEOUT_SECONDS,
    });
    if (configuration.serverMetadata().issuer !== issuer.issuer) {
      throw new IssuerUnavailable(`the discovery document at ${discoveryUrl.href} names issuer ${JSON.stringify(configuration.serverMetadata().issuer)}, expected ${JSON.stringify(issuer.issuer)}`);
    }
    return configuration;
  } catch (err) {
    if (err instanceof IssuerUnavailable) throw err;
    throw new IssuerUnavailable(`cannot discover the identity provider ${issuer.issuer}: ${describeOidcError(err)}`, {}, { cause: err });
  }
}

/** The parts of a token endpoint answer latchkey keeps; the access token is dropped. */
export function sessionFromTokens(
  broker: string,
  issuer: SessionIssuer,
  tokens: { id_token?: string; refresh_token?: string; claims(): { exp: number } | undefined },
  used: boolean,
): StoredSession {
  const claims = tokens.claims();
  if (!tokens.id_token || !claims) throw new LoginRequired(`the identity provider ${issuer.issuer} returned no ID token (is "openid" among cli_login.scopes?); run latchkey login again`);
  return {
    version: 1,
    broker,
    issuer,
    id_token: tokens.id_token,
    ...(tokens.refresh_token ? { refresh_token: tokens.refresh_token } : {}),
    expires_at: new Date(claims.exp * 1000).toISOString(),
    used,
  };
}

/**
 * The ID token of the stored sign-in for the broker at `brokerUrl`, renewed
 * with the refresh token when it is spent (`purpose: 'issue'` and used
 * already) or expires within 60 s. Undefined when there is no sign-in;
 * LoginRequired when it can no longer be renewed.
 */
export async function sessionToken(brokerUrl: string, env: Env, purpose: TokenPurpose, clock: Clock = systemClock): Promise<string | undefined> {
  const path = sessionFilePath(brokerUrl, env);
  if (readSession(path) === undefined) return undefined;
  return withSessionLock(path, async () => {
    const session = readSession(path);
    if (!session) throw new LoginRequired(`the sign-in for ${brokerUrl} was removed meanwhile (latchkey logout?); run latchkey login`);
    const fresh = Date.parse(session.expires_at) / 1000 - epochSeconds(clock.now()) > EXPIRY_MARGIN_SECONDS;
    if (fresh && !(purpose === 'issue' && session.used)) {
      if (purpose === 'issue') writeSession(path, { ...session, used: true });
      return session.id_token;
    }
    const renewed = await refreshSession(session, purpose === 'issue');
    writeSession(path, renewed);
    return renewed.id_token;
  });
}

/** One refresh grant: a new ID token (with a new jti), and the new refresh token if the IdP rotates them. */
async function refreshSession(session: StoredSession, used: boolean): Promise<StoredSession> {
  const again = 'run latchkey login again';
  if (!session.refresh_token) {
    throw new LoginRequired(`your sign-in through ${session.issuer.name} has ${session.used ? 'been used' : 'expired'} and the identity provider gave no refresh token to renew it; ${again}`);
  }
  const client = await import('openid-client');
  const configuration = await discoverIdp(session.issuer);
  let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
  try {
    tokens = await client.refreshTokenGrant(configuration, session.refresh_token);
  } catch (err) {
    if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') {
      throw new LoginRequired(`your sign-in through ${session.issuer.name} has expired (the identity provider refused to renew it: ${describeOidcError(err)}); ${again}`);
    }
    throw new IssuerUnavailable(`renewing the sign-in at ${session.issuer.issuer} failed: ${describeOidcError(err)}`, {}, { cause: err });
  }
  if (!tokens.id_token) {
    throw new LoginRequired(`the identity provider ${session.issuer.issuer} renewed the sign-in without a new ID token, and latchkey needs one; ${again}`);
  }
  const renewed = sessionFromTokens(session.broker, session.issuer, tokens, used);
  // IdPs that do not rotate refresh tokens answer without one: keep the one we have.
  return renewed.refresh_token ? renewed : { ...renewed, refresh_token: session.refresh_token };
}

/** openid-client's errors, as one line: the OAuth error and its description when the server sent them. */
export function describeOidcError(err: unknown): string {
  const e = err as { error?: unknown; error_description?: unknown; message?: string; cause?: unknown };
  if (typeof e.error === 'string') return typeof e.error_description === 'string' ? `${e.error}: ${e.error_description}` : e.error;
  const cause = e.cause as { message?: string } | undefined;
  return cause?.message && cause.message !== e.message ? `${e.message ?? String(err)} (${cause.message})` : (e.message ?? String(err));
}
