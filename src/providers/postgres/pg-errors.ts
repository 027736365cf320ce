import { LatchkeyError, ProviderMisconfigured, ProviderUnavailable } from '../../errors.js';

/** Network-level failures: the server is down, restarting or unreachable. */
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/**
 * SQLSTATEs that say the broker's own login or rights are wrong: retrying will
 * not help until an operator acts.
 */
const MISCONFIGURED_SQLSTATES = new Map([
  ['28P01', 'the admin password was refused'],
  ['28000', 'the admin login was refused'],
  ['42501', 'the admin role lacks a privilege it needs'],
  ['3D000', 'a configured database does not exist'],
]);

interface PgLikeError {
  readonly code?: unknown;
  readonly message?: unknown;
}

/** The SQLSTATE of a server error, or of the LatchkeyError `toProviderError` made from one. */
export function sqlState(err: unknown): string | undefined {
  const code = err instanceof LatchkeyError ? err.detail['sqlstate'] : (err as PgLikeError | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Turns anything pg threw into a LatchkeyError whose message is safe to log:
 * the target name, what the broker was doing, the SQLSTATE and the server's
 * message with every string in `secrets` cut out. The original error is not
 * attached as `cause`, so no connection setting can ride along into a log.
 */
export function toProviderError(err: unknown, target: string, doing: string, secrets: readonly string[]): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const message = secrets.reduce((text, secret) => (secret ? text.split(secret).join('[redacted]') : text), raw);
  const state = sqlState(err);
  const nodeCode = (err as PgLikeError | null)?.code;
  const detail = { target, sqlstate: state ?? null };
  if (state && MISCONFIGURED_SQLSTATES.has(state)) {
    return new ProviderMisconfigured(`postgres target ${target}: ${doing}: ${MISCONFIGURED_SQLSTATES.get(state)} (${state}: ${message})`, detail);
  }
  if (typeof nodeCode === 'string' && UNAVAILABLE_NODE_CODES.has(nodeCode)) {
    return new ProviderUnavailable(`postgres target ${target}: ${doing}: cannot reach the server (${nodeCode})`, detail);
  }
  return new ProviderUnavailable(`postgres target ${target}: ${doing}: ${state ? `${state}: ` : ''}${message}`, detail);
}
