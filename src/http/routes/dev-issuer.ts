import { Router } from 'express';
import { z } from 'zod';
import { InvalidRequest } from '../../errors.js';
import type { DevIssuer } from '../../identity/dev-issuer.js';

const mintBody = z.strictObject({
  claims: z.record(z.string(), z.unknown()).default({}),
  ttl_seconds: z.number().int().min(60).max(3600).optional(),
  audience: z.string().min(1).optional(),
});

/**
 * DEVELOPMENT ONLY: the issuer `latchkey dev` serves under /dev/oidc
 * (discovery, JWKS, and a mint endpoint for `latchkey token`). Never mounted
 * by `latchkey serve`.
 */
export function devIssuerRoutes(issuer: DevIssuer): Router {
  const router = Router();
  router.get('/.well-known/openid-configuration', (_req, res) => {
    res.json(issuer.discoveryDocument());
  });
  router.get('/jwks', (_req, res) => {
    res.json(issuer.jwks());
  });
  router.post('/token', async (req, res) => {
    const parsed = mintBody.safeParse(req.body ?? {});
    if (!parsed.success) throw new InvalidRequest(`invalid token request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const { claims, ttl_seconds, audience } = parsed.data;
    const token = await issuer.mint({ sub: 'dev-user', ...claims }, { ...(ttl_seconds ? { ttlSeconds: ttl_seconds } : {}), ...(audience ? { audience } : {}) });
    res.json({ token, issuer: issuer.issuerUrl, development_only: true });
  });
  return router;
}
