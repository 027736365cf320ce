import { Router } from 'express';
import type { AppContext } from '../context.js';
import { openApiDocument } from '../openapi.js';

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
