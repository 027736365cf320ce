import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { formatDuration, parseDuration } from '../../config/duration.js';
import { InvalidRequest } from '../../errors.js';
import type { GrantRecord } from '../../grants/records.js';
import type { GrantCaller } from '../../grants/service.js';
import type { GrantRequest } from '../../policy/types.js';
import { authenticate, callerOf, requestFacts } from '../auth.js';
import type { AppContext } from '../context.js';

/** The body of `POST /v1/grants` and `POST /v1/explain`. */
export const grantRequestBody = z.strictObject({
  kind: z.string().min(1).max(32),
  target: z.string().min(1).max(63),
  scope: z.record(z.string(), z.unknown()).default({}),
  ttl: z.union([z.string(), z.number()]).optional(),
  reason: z.string().max(500).optional(),
});

/** Validates a request body once, at the boundary, with messages naming the field. */
export function parseGrantRequest(body: unknown): GrantRequest {
  const parsed = grantRequestBody.safeParse(body ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw new InvalidRequest(`invalid request body: ${problems.join('; ')}`, { problems });
  }
  const { ttl, reason, ...rest } = parsed.data;
  let ttlSeconds: number | undefined;
  if (ttl !== undefined) {
    const seconds = parseDuration(ttl);
    if (seconds === null || seconds < 60) throw new InvalidRequest(`ttl: expected a duration of at least 60s such as "10m", got ${JSON.stringify(ttl).slice(0, 40)}`);
    ttlSeconds = seconds;
  }
  return { ...rest, ...(ttlSeconds === undefined ? {} : { ttlSeconds }), ...(reason === undefined ? {} : { reason }) };
}

/**
 * `{ warnings }` when the credential will live shorter than the `ttl` asked for
 * (the rule's `max_ttl` caps it, as Vault caps a TTL at its max_ttl): said, not
 * silent. A grant waiting for approval keeps its credential's lifetime apart
 * from its own expiry, which is the end of the approval window.
 */
function ttlWarnings(request: GrantRequest, grant: GrantRecord): { warnings?: string[] } {
  if (request.ttlSeconds === undefined) return {};
  const granted = grant.ttlSeconds ?? Math.round((grant.expiresAt.getTime() - grant.createdAt.getTime()) / 1000);
  if (granted >= request.ttlSeconds) return {};
  return { warnings: [`ttl: asked for ${formatDuration(request.ttlSeconds)}; rule ${grant.rule} allows at most ${formatDuration(granted)}, so this grant lasts ${formatDuration(granted)}`] };
}

export function grantCaller(req: Request, res: Response): GrantCaller {
  const { identity, roles } = callerOf(res);
  return { identity, roles, ...requestFacts(req, res) };
}

/** A grant as the API shows it. */
export function grantView(g: GrantRecord): Record<string, unknown> {
  return {
    id: g.id,
    status: g.status,
    kind: g.kind,
    target: g.target,
    rule: g.rule,
    subject: g.subject,
    issuer: g.issuer,
    scope: g.scope,
    reason: g.reason,
    createdAt: g.createdAt.toISOString(),
    issuedAt: g.issuedAt?.toISOString() ?? null,
    expiresAt: g.expiresAt.toISOString(),
    revokedAt: g.revokedAt?.toISOString() ?? null,
    revokedBy: g.revokedBy,
    endReason: g.endReason,
    approvedBy: g.approvedBy,
    providerRef: g.providerRef,
    ...(g.status === 'revoking' ? { revocation: { attempts: g.revokeAttempts, lastError: g.revokeError, nextAttemptAt: g.nextAttemptAt?.toISOString() ?? null } } : {}),
  };
}

export function grantRoutes(ctx: AppContext): Router {
  const router = Router();
  const read = authenticate(ctx, { consume: false });

  router.post('/grants', authenticate(ctx, { consume: true }), async (req, res) => {
    const caller = grantCaller(req, res);
    let request: GrantRequest;
    try {
      request = parseGrantRequest(req.body);
    } catch (err) {
      return ctx.grants.refuseUnreadable(caller, err);
    }
    const result = await ctx.grants.request(caller, request);
    const warnings = ttlWarnings(request, result.grant);
    if ('pending' in result) {
      res.status(202).location(`/v1/grants/${result.grant.id}`).json({
        ...grantView(result.grant),
        message: 'this grant needs approval by someone holding the approver role; once approved, claim it with POST /v1/grants/{id}/claim',
        ...warnings,
      });
      return;
    }
    res.status(201).location(`/v1/grants/${result.grant.id}`).json({ ...grantView(result.grant), ...warnings, credential: result.credential });
  });

  router.get('/grants', read, async (_req, res) => {
    const { identity } = callerOf(res);
    const grants = await ctx.grants.store.listForSubject(identity.issuerName, identity.subject, 100);
    res.json({ grants: grants.map(grantView) });
  });

  router.get('/grants/pending', read, async (_req, res) => {
    const { roles } = callerOf(res);
    if (!roles.has('approver') && !roles.has('admin')) {
      res.json({ grants: [] });
      return;
    }
    const grants = await ctx.grants.store.listPendingApproval(100);
    res.json({ grants: grants.map(grantView) });
  });

  router.get('/grants/:id', read, async (req, res) => {
    res.json(grantView(await ctx.grants.visibleGrant(callerOf(res), req.params['id'] as string)));
  });

  router.delete('/grants/:id', read, async (req, res) => {
    const grant = await ctx.grants.revoke(grantCaller(req, res), req.params['id'] as string);
    // Said every time: for some kinds revoking ends the grant here but not the credential out there.
    const revocationNote = ctx.targets.get(grant.target)?.revocationNote;
    res.status(grant.status === 'revoking' ? 202 : 200).json({ ...grantView(grant), ...(revocationNote ? { revocationNote } : {}) });
  });

  router.post('/grants/:id/approve', read, async (req, res) => {
    const note = typeof req.body?.note === 'string' ? req.body.note.slice(0, 500) : undefined;
    res.json(grantView(await ctx.grants.decideApproval(grantCaller(req, res), req.params['id'] as string, true, note)));
  });

  router.post('/grants/:id/deny', read, async (req, res) => {
    const note = typeof req.body?.note === 'string' ? req.body.note.slice(0, 500) : undefined;
    res.json(grantView(await ctx.grants.decideApproval(grantCaller(req, res), req.params['id'] as string, false, note)));
  });

  router.post('/grants/:id/claim', authenticate(ctx, { consume: true }), async (req, res) => {
    const presented = req.body?.scope && typeof req.body.scope === 'object' ? (req.body.scope as Record<string, unknown>) : {};
    const result = await ctx.grants.claimApproved(grantCaller(req, res), req.params['id'] as string, presented);
    res.status(201).json({ ...grantView(result.grant), credential: result.credential });
  });

  router.post('/explain', read, async (req, res) => {
    const request = parseGrantRequest(req.body);
    const { explanation } = ctx.grants.explain(grantCaller(req, res), request);
    res.json(explanation);
  });

  router.get('/whoami', read, (_req, res) => {
    const { identity, roles } = callerOf(res);
    res.json({ issuer: identity.issuerName, subject: identity.subject, roles: [...roles], expiresAt: identity.expiresAt.toISOString() });
  });

  return router;
}
