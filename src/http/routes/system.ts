import { Router } from 'express';
import type { AppContext } from '../context.js';
import { openApiDocument } from '../openapi.js';
import { NotFound } from '../../errors.js';

/** Health, readiness, metrics, the OpenAPI document and the CA bundle: no token needed. */
export function systemRoutes(ctx: AppContext): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const database = await ctx.db.ping();
    const issuers = await ctx.verifier.ready().catch(() => false);
    const targets: Record<string, string> = {};
    for (const [name, target] of ctx.targets) targets[name] = (await target.ready().catch(() => false)) ? 'ready' : 'unreachable';
    for (const [name, reason] of ctx.targetErrors) targets[name] = `failed to open: ${reason}`;
    // Readiness is the broker's own: a target that is down degrades grants for that target only.
    const ready = database;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', database: database ? 'ok' : 'unreachable', issuers: issuers ? 'keys loaded' : 'keys not loaded yet', targets });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  router.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument(ctx.publicUrl));
  });

  // The CRL of a certificate target: grants revoked (or failed after issuing) and not yet expired.
  router.get('/v1/ca/crl', async (req, res) => {
    const name = typeof req.query['target'] === 'string' ? req.query['target'] : '';
    const target = ctx.targets.get(name);
    if (!target?.revocationList) {
      throw new NotFound(`no certificate target named ${JSON.stringify(name.slice(0, 63))} (pass ?target=NAME)`);
    }
    const now = ctx.clock.now();
    const crl = await target.revocationList(await ctx.grants.store.endedBeforeExpiry(name, now), now);
    res.set('cache-control', 'max-age=60');
    if (req.query['format'] === 'pem' || req.accepts(['application/pkix-crl', 'application/x-pem-file']) === 'application/x-pem-file') {
      res.type('application/x-pem-file').send(crl.pem);
      return;
    }
    res.type('application/pkix-crl').send(crl.der);
  });

  router.get('/v1/ca', (req, res) => {
    const bundles: Record<string, string> = {};
    for (const [name, target] of ctx.targets) {
      const info = target.publicInfo?.();
      if (info && typeof info['trustBundle'] === 'string') bundles[name] = info['trustBundle'];
    }
    const wanted = typeof req.query['target'] === 'string' ? req.query['target'] : undefined;
    if (wanted !== undefined && !(wanted in bundles)) {
      res.status(404).type('application/problem+json').send(JSON.stringify({ type: 'https://latchkey.dev/problems/not_found', title: 'Not found', status: 404, code: 'not_found', detail: `no certificate target named ${JSON.stringify(wanted.slice(0, 63))}` }));
      return;
    }
    if (req.accepts(['application/json', 'application/x-pem-file']) === 'application/x-pem-file' || wanted) {
      const pems = wanted ? [bundles[wanted] as string] : [...new Set(Object.values(bundles))];
      res.type('application/x-pem-file').send(pems.join(''));
      return;
    }
    res.json({ bundles });
  });

  return router;
}
