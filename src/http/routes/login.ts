import { Router } from 'express';
import type { IssuerConfig } from '../../config/schema.js';
import type { AppContext } from '../context.js';

/** One issuer an engineer can sign in through with `latchkey login`. */
export interface LoginIssuer {
  readonly name: string;
  /** The exact `iss`; the CLI discovers the IdP from it. */
  readonly issuer: string;
  readonly client_id: string;
  readonly scopes: readonly string[];
  /** Present when the issuer's discovery document is not at `<issuer>/.well-known/openid-configuration`. */
  readonly discovery_url?: string;
  /** Present when the loopback login must use a fixed port (the IdP matches the redirect URI exactly). */
  readonly redirect_port?: number;
  /** Present (true) only for an `http://` issuer the configuration allows (tests). */
  readonly allow_insecure_http?: true;
}

/** The issuers with `cli_login`, as the CLI needs them: public facts only, no secret exists for a public client. */
export function loginIssuers(issuers: readonly IssuerConfig[]): LoginIssuer[] {
  return issuers.flatMap((issuer) => {
    const login = issuer.cli_login;
    if (!login || !issuer.issuer) return [];
    return [
      {
        name: issuer.name,
        issuer: issuer.issuer,
        client_id: login.client_id,
        scopes: login.scopes,
        ...(issuer.discovery_url ? { discovery_url: issuer.discovery_url } : {}),
        ...(login.redirect_port ? { redirect_port: login.redirect_port } : {}),
        ...(issuer.allow_insecure_http ? { allow_insecure_http: true as const } : {}),
      },
    ];
  });
}

/**
 * `GET /v1/login/config`: where `latchkey login` should send the engineer to
 * sign in. No token needed — the caller has none yet.
 *
 * Paths are absolute: mount with `{ path: '/', router: loginRoutes(ctx) }`.
 */
export function loginRoutes(ctx: AppContext): Router {
  const router = Router();
  const issuers = loginIssuers(ctx.config.issuers);
  router.get('/v1/login/config', (_req, res) => {
    res.json({ issuers });
  });
  return router;
}
