import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { RoleName } from '../config/schema.js';
import { Forbidden, TokenMissing, auditErrorFacts, isLatchkeyError } from '../errors.js';
import type { AppContext, Caller, RequestFacts } from './context.js';

/** The bearer token of a request, or TokenMissing. */
export function bearerToken(req: Request): string {
  const header = req.get('authorization');
  if (!header) throw new TokenMissing('an Authorization: Bearer <OIDC token> header is required');
  const match = /^Bearer[ ]+(\S+)$/i.exec(header.trim());
  if (!match) throw new TokenMissing('the Authorization header must be "Bearer <OIDC token>"');
  return match[1] as string;
}

/** Request id and client address, for audit events. */
export function requestFacts(req: Request, res: Response): RequestFacts {
  return { requestId: res.locals['requestId'] as string, clientAddress: req.ip ?? req.socket.remoteAddress ?? 'unknown' };
}

/**
 * Verifies the bearer token and puts the caller in `res.locals.caller`.
 * `consume` burns the token's jti (credential-issuing routes only).
 * A refused token is itself an audit event.
 */
export function authenticate(ctx: AppContext, options: { consume: boolean }): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const identity = await ctx.verifier.verify(bearerToken(req), { consume: options.consume });
      const roles = ctx.policy.rolesOf({ issuerName: identity.issuerName, claims: identity.claims });
      res.locals['caller'] = { identity, roles } satisfies Caller;
      next();
    } catch (err) {
      if (isLatchkeyError(err) && err.status === 401) {
        ctx.metrics.tokensRejected.inc({ code: err.code });
        const facts = requestFacts(req, res);
        // Best effort: a refused token must not become a 503 because audit is down.
        await ctx.audit
          .append({ type: 'token.rejected', outcome: 'denied', ...facts, error: auditErrorFacts(err) })
          .catch(() => {});
      }
      next(err);
    }
  };
}

export function callerOf(res: Response): Caller {
  const caller = res.locals['caller'] as Caller | undefined;
  if (!caller) throw new TypeError('route used without authenticate()');
  return caller;
}

/** Refuses callers without the role. Admins have every role. */
export function requireRole(role: RoleName): RequestHandler {
  return (_req, res, next) => {
    const { roles } = callerOf(res);
    if (roles.has(role) || roles.has('admin')) return next();
    next(new Forbidden(`this needs the ${role} role; your token matches none of roles.${role} in the configuration`));
  };
}
