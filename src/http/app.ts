import { randomUUID } from 'node:crypto';
import express, { type Express, type Router } from 'express';
import type { AppContext } from './context.js';
import { problemHandler } from './problem.js';
import { grantRoutes } from './routes/grants.js';
import { systemRoutes } from './routes/system.js';
import { NotFound } from '../errors.js';

/** Extra routers mounted by optional modules (audit, dev issuer, provider-specific admin routes). */
export interface MountedRouter {
  readonly path: string;
  readonly router: Router;
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the express app: middleware, routes, and the one error path. */
export function createApp(ctx: AppContext, mounts: readonly MountedRouter[] = []): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', ctx.config.server.trust_proxy);
  app.set('etag', false);

  // Request id on every response and every audit row; a caller's id is kept if it is safe to log.
  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    const id = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals['requestId'] = id;
    res.set('x-request-id', id);
    res.set('x-content-type-options', 'nosniff');
    res.set('x-frame-options', 'DENY');
    res.set('referrer-policy', 'no-referrer');
    res.set('cross-origin-resource-policy', 'same-origin');
    if (!req.path.startsWith('/ui/')) {
      res.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
      res.set('cache-control', 'no-store');
    }
    const started = performance.now();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      ctx.metrics.httpRequests.inc({ route: `${req.baseUrl}${route}`.slice(0, 64), status: String(res.statusCode) });
      ctx.logger.debug({ requestId: id, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
    next();
  });
  app.use(express.json({ limit: ctx.config.server.body_limit, type: ['application/json', 'application/*+json'] }));

  app.use(systemRoutes(ctx));
  app.use('/v1', grantRoutes(ctx));
  for (const m of mounts) app.use(m.path, m.router);

  app.use((req, _res, next) => next(new NotFound(`no route ${req.method} ${req.path.slice(0, 100)}`)));
  app.use(problemHandler(ctx.logger));
  return app;
}
