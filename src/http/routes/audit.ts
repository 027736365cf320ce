import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { loadAuditSigningKey } from '../../audit/checkpoint.js';
import { Checkpointer, auditOrigin, storedCheckpoint } from '../../audit/checkpointer.js';
import { exportAuditEvents, parseAuditFilters, queryAuditEvents, type AuditFilters } from '../../audit/query.js';
import { InvalidRequest, NotFound } from '../../errors.js';
import { authenticate, callerOf, requestFacts, requireRole } from '../auth.js';
import type { AppContext } from '../context.js';

const seqParam = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

function queryValues(req: Request): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(req.query)) {
    if (Array.isArray(value)) throw new InvalidRequest(`${key}: give it once`);
    values[key] = value;
  }
  return values;
}

function numberParam(req: Request, name: string, optional: true): number | undefined;
function numberParam(req: Request, name: string, optional?: false): number;
function numberParam(req: Request, name: string, optional = false): number | undefined {
  const raw = req.query[name];
  if (raw === undefined && optional) return undefined;
  const parsed = seqParam.safeParse(raw);
  if (!parsed.success) throw new InvalidRequest(`${name}: expected a non-negative integer`);
  return parsed.data;
}

/** Every read of the audit log is itself an audit event, committed before the answer. */
async function recordRead(ctx: AppContext, req: Request, res: Response, what: string, details: Record<string, unknown> = {}): Promise<void> {
  const { identity } = callerOf(res);
  await ctx.audit.append({
    type: 'audit.read',
    outcome: 'success',
    ...requestFacts(req, res),
    issuer: identity.issuer,
    subject: identity.subject,
    tokenHash: identity.tokenHash,
    details: { what, ...details },
  });
}

/** A Checkpointer for the broker of `ctx`: its signing key, its origin. */
export function checkpointerFor(ctx: AppContext): Checkpointer {
  const key = loadAuditSigningKey({ file: ctx.config.keys.audit_signing_key_file, dataDir: ctx.dataDir, devMode: ctx.devMode });
  return new Checkpointer({ db: ctx.db, clock: ctx.clock, key, origin: auditOrigin(ctx.publicUrl), logger: ctx.logger });
}

/**
 * The auditor API, mounted at `/v1/audit`. `GET /key` is public; everything
 * else needs the auditor role (POST /checkpoint: admin), and each read is
 * itself an `audit.read` event.
 */
export function auditRoutes(ctx: AppContext, checkpointer: Checkpointer = checkpointerFor(ctx)): Router {
  const router = Router();
  const auditor = [authenticate(ctx, { consume: false }), requireRole('auditor')];
  const tree = checkpointer.tree;

  router.get('/key', (req, res) => {
    const key = checkpointer.verifierKey;
    res.set('cache-control', 'public, max-age=300');
    if (req.query['format'] === 'text') res.type('text/plain').send(`${key}\n`);
    else res.json({ keyName: checkpointer.origin, algorithm: 'Ed25519', verifierKey: key, publicKey: checkpointer.publicKeyRaw.toString('base64') });
  });

  router.get('/events', ...auditor, async (req, res) => {
    const { cursor, limit, ...rest } = queryValues(req);
    const filters = parseAuditFilters(rest);
    const pageSize = limit === undefined ? 100 : Number(limit);
    if (cursor !== undefined && typeof cursor !== 'string') throw new InvalidRequest('cursor: expected a string');
    const page = await queryAuditEvents(ctx.db, filters, cursor, pageSize);
    await recordRead(ctx, req, res, 'events', { filters, cursor: cursor ?? null, returned: page.events.length });
    res.json(page);
  });

  router.get('/export', ...auditor, async (req, res) => {
    const { format = 'jsonl', ...rest } = queryValues(req);
    if (format !== 'jsonl' && format !== 'csv') throw new InvalidRequest('format: expected jsonl or csv');
    const filters: AuditFilters = parseAuditFilters(rest);
    await recordRead(ctx, req, res, 'export', { format, filters });
    res.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/jsonl; charset=utf-8');
    res.set('content-disposition', `attachment; filename="latchkey-audit.${format}"`);
    await pipeline(Readable.from(exportAuditEvents(ctx.db, filters, format)), res);
  });

  router.get('/checkpoint', ...auditor, async (req, res) => {
    const size = numberParam(req, 'size', true);
    const checkpoint = (await storedCheckpoint(ctx.db, size)) ?? (size === undefined ? await checkpointer.signNow() : undefined);
    if (!checkpoint) throw new NotFound(`no checkpoint of size ${size} was signed`);
    await recordRead(ctx, req, res, 'checkpoint', { treeSize: checkpoint.treeSize });
    if (req.query['format'] === 'note') res.type('text/plain; charset=utf-8').send(checkpoint.note);
    else res.json(checkpoint);
  });

  router.post('/checkpoint', authenticate(ctx, { consume: false }), requireRole('admin'), async (req, res) => {
    const checkpoint = await checkpointer.signNow();
    await recordRead(ctx, req, res, 'checkpoint.sign', { treeSize: checkpoint.treeSize });
    res.status(201).json(checkpoint);
  });

  router.get('/proof/inclusion', ...auditor, async (req, res) => {
    const seq = numberParam(req, 'seq');
    const size = numberParam(req, 'size', true) ?? (await storedCheckpoint(ctx.db))?.treeSize ?? (await tree.size());
    const current = await tree.size();
    if (size > current) throw new InvalidRequest(`size: the log has ${current} events`);
    if (seq >= size) throw new InvalidRequest(`seq: event ${seq} is not in the tree of size ${size}`);
    const [leafHash, proof, rootHash] = await Promise.all([tree.leafHash(seq), tree.inclusionProof(seq, size), tree.root(size)]);
    await recordRead(ctx, req, res, 'proof.inclusion', { seq, treeSize: size });
    res.json({
      seq,
      treeSize: size,
      leafHash: leafHash?.toString('base64'),
      rootHash: rootHash.toString('base64'),
      proof: proof.map((p) => p.toString('base64')),
    });
  });

  router.get('/proof/consistency', ...auditor, async (req, res) => {
    const from = numberParam(req, 'from');
    const to = numberParam(req, 'to', true) ?? (await tree.size());
    const current = await tree.size();
    if (to > current) throw new InvalidRequest(`to: the log has ${current} events`);
    if (from > to) throw new InvalidRequest('from: must not be larger than to');
    const [proof, fromRoot, toRoot] = await Promise.all([tree.consistencyProof(from, to), tree.root(from), tree.root(to)]);
    await recordRead(ctx, req, res, 'proof.consistency', { from, to });
    res.json({ from, to, fromRoot: fromRoot.toString('base64'), toRoot: toRoot.toString('base64'), proof: proof.map((p) => p.toString('base64')) });
  });

  return router;
}

