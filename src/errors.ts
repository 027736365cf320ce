/**
 * Every error latchkey raises on purpose lives here: one base class, one stable
 * string `code` per subclass, so callers (HTTP, CLI, tests) can switch on
 * `err.code` and never parse messages.
 *
 * `status` is the HTTP status the error maps to; `expose` says whether the
 * message may be shown to the caller (true below 500, as in node-oidc-provider).
 * A `TypeError` thrown anywhere is a bug in latchkey and becomes a 500.
 */
export abstract class LatchkeyError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** Structured, non-secret detail for the problem+json body and the audit log. */
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(message: string, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.detail = detail;
  }

  get expose(): boolean {
    return this.status < 500;
  }
}

// ---- configuration (refuses to start) ------------------------------------

/** The configuration file is invalid; the message names the file and dotted path. */
export class ConfigError extends LatchkeyError {
  readonly code = 'config_invalid';
  readonly status = 500;
}

/** The broker cannot listen where it was told to (address in use, not permitted, not on this host). */
export class ListenFailed extends LatchkeyError {
  readonly code = 'listen_failed';
  readonly status = 500;
}

// ---- request shape (400) --------------------------------------------------

/** The request body or parameters do not have the expected shape. */
export class InvalidRequest extends LatchkeyError {
  readonly code: string = 'invalid_request';
  readonly status: number = 400;
}

/** The requested scope is malformed for its kind (bad table name, bad CSR, ...). */
export class InvalidScope extends InvalidRequest {
  override readonly code: string = 'invalid_scope';
}

/** A CSR could not be parsed, its signature is wrong, or its key is not accepted. */
export class InvalidCsr extends InvalidScope {
  override readonly code = 'invalid_csr';
}

/** The named target is not configured. */
export class UnknownTarget extends InvalidRequest {
  override readonly code = 'unknown_target';
  override readonly status = 404;
}

/** A resource (grant, event) does not exist or the caller may not know it exists. */
export class NotFound extends LatchkeyError {
  readonly code = 'not_found';
  readonly status = 404;
}

// ---- identity (401) -------------------------------------------------------

/** Base of every token refusal. Messages say which check failed, never echo the token. */
export class TokenRejected extends LatchkeyError {
  readonly code: string = 'token_invalid';
  readonly status = 401;
}
export class TokenMissing extends TokenRejected {
  override readonly code = 'token_missing';
}
export class TokenMalformed extends TokenRejected {
  override readonly code = 'token_malformed';
}
export class TokenTooLarge extends TokenRejected {
  override readonly code = 'token_too_large';
}
export class TokenUnknownIssuer extends TokenRejected {
  override readonly code = 'token_issuer_unknown';
}
export class TokenAlgorithmRejected extends TokenRejected {
  override readonly code = 'token_alg_rejected';
}
export class TokenSignatureInvalid extends TokenRejected {
  override readonly code = 'token_signature_invalid';
}
export class TokenKeyNotFound extends TokenRejected {
  override readonly code = 'token_key_unknown';
}
export class TokenExpired extends TokenRejected {
  override readonly code = 'token_expired';
}
export class TokenNotYetValid extends TokenRejected {
  override readonly code = 'token_not_yet_valid';
}
export class TokenTooOld extends TokenRejected {
  override readonly code = 'token_too_old';
}
export class TokenAudienceMismatch extends TokenRejected {
  override readonly code = 'token_audience_mismatch';
}
export class TokenClaimInvalid extends TokenRejected {
  override readonly code = 'token_claim_invalid';
}
export class TokenReplayed extends TokenRejected {
  override readonly code = 'token_replayed';
}

/** The laptop's sign-in (`latchkey login`) is missing, expired or can no longer be refreshed: sign in again. */
export class LoginRequired extends TokenRejected {
  override readonly code = 'login_required';
}

/** `latchkey login` did not complete: the sign-in was refused, did not match what was sent, or timed out. */
export class LoginFailed extends TokenRejected {
  override readonly code = 'login_failed';
}

// ---- authorization (403) --------------------------------------------------

/** Policy said no. `detail.reasons` carries what the caller may see of why. */
export class PolicyDenied extends LatchkeyError {
  readonly code = 'policy_denied';
  readonly status = 403;
}

/**
 * A claim value could not be templated into what would be issued (a SPIFFE
 * path segment, a role name...): a denial, never a malformed credential. The
 * message names the placeholder, the claim and what was expected, never the
 * whole claim set.
 */
export class TemplateError extends LatchkeyError {
  readonly code = 'template_invalid';
  readonly status = 403;
}

/** The caller is authenticated but lacks the role (auditor, approver, admin) or ownership. */
export class Forbidden extends LatchkeyError {
  readonly code = 'forbidden';
  readonly status = 403;
}

/** The grant is not in a state that allows the operation (revoking a failed grant, approving twice). */
export class Conflict extends LatchkeyError {
  readonly code = 'conflict';
  readonly status = 409;
}

/** Too many requests from one identity; `detail.retryAfterSeconds` says when to retry. */
export class RateLimited extends LatchkeyError {
  readonly code = 'rate_limited';
  readonly status = 429;
}

// ---- the broker or its dependencies (5xx) ---------------------------------

/** The audit log could not be written: fail closed, nothing was (or stays) issued. */
export class AuditUnavailable extends LatchkeyError {
  readonly code = 'audit_unavailable';
  readonly status = 503;
  override get expose(): boolean {
    return true;
  }
}

/** A provider's backend (database, STS, ...) is down or refused the broker: an operator problem. */
export class ProviderUnavailable extends LatchkeyError {
  readonly code: string = 'provider_unavailable';
  readonly status: number = 503;
  override get expose(): boolean {
    return true;
  }
}

/** The backend refused the broker's own identity (it may not assume the role, log in, ...). */
export class ProviderMisconfigured extends ProviderUnavailable {
  override readonly code = 'provider_misconfigured';
  override readonly status = 502;
}

/** A configured token issuer's discovery document or key set cannot be fetched or used: tokens from it cannot be checked. */
export class IssuerUnavailable extends LatchkeyError {
  readonly code = 'issuer_unavailable';
  readonly status = 503;
  override get expose(): boolean {
    return true;
  }
}

/** The database holding state and audit is unreachable. */
export class StoreUnavailable extends LatchkeyError {
  readonly code = 'store_unavailable';
  readonly status = 503;
  override get expose(): boolean {
    return true;
  }
}

/** The database schema is newer than this build of latchkey. */
export class SchemaTooNew extends LatchkeyError {
  readonly code = 'schema_too_new';
  readonly status = 500;
}

export function isLatchkeyError(err: unknown): err is LatchkeyError {
  return err instanceof LatchkeyError;
}

/** Longest error message an audit event keeps: a caller's input echoed in a message must not bloat the permanent log. */
export const AUDIT_ERROR_MESSAGE_MAX = 1000;

/**
 * What the audit log records of an error: the stable code and the message, cut
 * to AUDIT_ERROR_MESSAGE_MAX characters; anything not a LatchkeyError is an
 * unexpected error whose message stays out (it may hold anything).
 */
export function auditErrorFacts(err: unknown): { code: string; message: string } {
  if (!isLatchkeyError(err)) return { code: 'internal', message: 'unexpected error' };
  const { message } = err;
  return { code: err.code, message: message.length > AUDIT_ERROR_MESSAGE_MAX ? `${message.slice(0, AUDIT_ERROR_MESSAGE_MAX - 1)}…` : message };
}
