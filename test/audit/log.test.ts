import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, parseVerifierKey, signingKeyFromPem, verifierKey, type AuditSigningKey } from '../../src/audit/checkpoint.js';
import { Checkpointer, storedCheckpoint } from '../../src/audit/checkpointer.js';
import { AuditLog } from '../../src/audit/log.js';
import { verifyInclusion, verifyConsistency } from '../../src/audit/merkle.js';
import { exportAuditEvents, queryAuditEvents } from '../../src/audit/query.js';
import type { AuditEventInput } from '../../src/audit/types.js';
import { verifyAuditExport } from '../../src/audit/verify.js';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/io.js';
import { ManualClock } from '../../src/clock.js';
import { Database } from '../../src/store/database.js';
import { createMigratedDatabase } from '../support/database.js';

const ORIGIN = 'broker.test/audit';

function newKey(): AuditSigningKey {
  return signingKeyFromPem(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}

function grantEvent(i: number): AuditEventInput {
  return {
    type: 'grant.issued',
    outcome: 'success',
    requestId: `req-${i}`,
    issuer: 'https://sso.example',
    subject: `user-${i % 3}@example.com`,
    claims: { repository: `acme/app-${i % 2}` },
    kind: 'aws',
    target: 'prod',
    grantId: randomUUID(),
    providerRef: `ASIA${String(i).padStart(16, '0')}`,
  };
}

function captureIO(cwd: string): CliIO & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    env: {},
    cwd,
    stdout: { write: (t: string) => (io.out += t) },
    stderr: { write: (t: string) => (io.err += t) },
  };
  return io;
}

async function collect(source: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of source) text += chunk;
  return text;
}

describe('the audit log', () => {
  let t: Awaited<ReturnType<typeof createMigratedDatabase>>;
  let log: AuditLog;
  let key: AuditSigningKey;
  let checkpointer: Checkpointer;
  let dir: string;
  const clock = new ManualClock('2026-03-01T10:00:00Z');

  beforeAll(async () => {
    t = await createMigratedDatabase();
    log = new AuditLog(t.db, clock);
    key = newKey();
    checkpointer = new Checkpointer({ db: t.db, clock, key, origin: ORIGIN });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-audit-'));
  });
  afterAll(async () => {
    await log.close();
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives concurrent appends one dense sequence, each caller its own record, chained to the one before', async () => {
    const records = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(grantEvent(i))));
    expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    records.forEach((r, i) => expect(r.requestId).toBe(`req-${i}`));
    const stored = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events WHERE body::jsonb ? $1', ['prev']);
    expect(Number(stored.rows[0]?.n)).toBe(19);
  });

  it('signs one checkpoint per size, even when two signers race, and proves every event is in it', async () => {
    const other = new Checkpointer({ db: t.db, clock, key, origin: ORIGIN });
    const [a, b] = await Promise.all([checkpointer.signNow(), other.signNow()]);
    expect(a).toEqual(b);
    const rows = await t.db.query('SELECT tree_size FROM audit_checkpoints');
    expect(rows.rows).toEqual([{ tree_size: '20' }]);
    const opened = openCheckpoint(a.note, parseVerifierKey(checkpointer.verifierKey));
    expect(opened.treeSize).toBe(20);
    for (let seq = 0; seq < 20; seq += 1) {
      const proof = await checkpointer.tree.inclusionProof(seq, 20);
      expect(verifyInclusion(seq, 20, (await checkpointer.tree.leafHash(seq)) as Buffer, proof, opened.rootHash)).toBe(true);
    }
    await expect(checkpointer.tree.root(10).then(async (old) => verifyConsistency(10, 20, old, opened.rootHash, await checkpointer.tree.consistencyProof(10, 20)))).resolves.toBe(true);
  });

  it('refuses to change a checkpoint once stored', async () => {
    await expect(t.db.query('UPDATE audit_checkpoints SET note = note')).rejects.toThrow(/append-only/);
    await expect(t.db.query('DELETE FROM audit_checkpoints')).rejects.toThrow(/append-only/);
  });

  it('filters by subject and provider reference and pages in log order', async () => {
    const first = await queryAuditEvents(t.db, { subject: 'user-1@example.com' }, undefined, 3);
    expect(first.events.map((e) => e.seq)).toEqual([1, 4, 7]);
    const second = await queryAuditEvents(t.db, { subject: 'user-1@example.com' }, first.nextCursor ?? undefined, 3);
    expect(second.events.map((e) => e.seq)).toEqual([10, 13, 16]);
    const byKey = await queryAuditEvents(t.db, { awsAccessKeyId: 'ASIA0000000000000012' }, undefined, 10);
    expect(byKey.events.map((e) => e.seq)).toEqual([12]);
    const csv = await collect(exportAuditEvents(t.db, { repository: 'acme/app-1', size: 6 }, 'csv'));
    expect(csv.split('\r\n').filter(Boolean).map((l) => l.split(',')[0])).toEqual(['seq', '1', '3', '5']);
  });

  describe('offline verification with `latchkey audit verify`', () => {
    let checkpointFile: string;
    let keyText: string;

    beforeAll(async () => {
      const checkpoint = (await storedCheckpoint(t.db, 20))!;
      checkpointFile = join(dir, 'checkpoint.txt');
      writeFileSync(checkpointFile, checkpoint.note);
      keyText = checkpointer.verifierKey;
    });

    async function verifyExportOf(queryable: pg.ClientBase | Database, name: string, extra: string[] = []) {
      const file = join(dir, `${name}.jsonl`);
      writeFileSync(file, await collect(exportAuditEvents(queryable, {}, 'jsonl')));
      const io = captureIO(dir);
      const code = await main(['audit', 'verify', '--export', file, '--checkpoint', checkpointFile, '--key', keyText, ...extra], io);
      return { code, io };
    }

    /** Tampers as a superuser past the append-only trigger, exports, and rolls back. */
    async function tampered(name: string, sql: string[]): Promise<{ code: number; io: { out: string; err: string } }> {
      const client = new pg.Client({ connectionString: t.url });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL session_replication_role = replica');
        for (const statement of sql) await client.query(statement);
        return await verifyExportOf(client, name);
      } finally {
        await client.query('ROLLBACK');
        await client.end();
      }
    }

    it('accepts the untouched log', async () => {
      const { code, io } = await verifyExportOf(t.db, 'intact');
      expect(io.err).toBe('');
      expect(io.out).toMatch(/^verified: 20 events of broker\.test\/audit/);
      expect(code).toBe(0);
    });

    it.each([
      ['an edited event', 7, /was changed/, [`UPDATE audit_events SET body = replace(body, '"outcome":"success"', '"outcome":"denied"') WHERE seq = 7`]],
      ['a deleted event', 5, /missing/, ['DELETE FROM audit_events WHERE seq = 5']],
      ['two swapped events', 3, /missing|moved/, ['UPDATE audit_events SET seq = 1000 WHERE seq = 3', 'UPDATE audit_events SET seq = 3 WHERE seq = 4', 'UPDATE audit_events SET seq = 4 WHERE seq = 1000']],
      ['a truncated tail', 17, /ends after 17 events/, ['DELETE FROM audit_events WHERE seq >= 17']],
    ] as const)('names the index of %s', async (name, index, message, sql) => {
      const { code, io } = await tampered(name.replace(/\W+/g, '-'), [...sql]);
      expect(code).toBe(1);
      expect(io.err).toContain(`at index ${index}:`);
      expect(io.err).toMatch(message);
    });

    it('names the index of an inserted event', async () => {
      // A forger shifts the later rows and slips a well-formed, correctly chained event in at seq 9.
      const previous = await t.db.query<{ body: string; leaf_hash: Buffer }>('SELECT body, leaf_hash FROM audit_events WHERE seq = 8');
      const forged = JSON.parse(previous.rows[0]!.body) as Record<string, unknown>;
      const { canonicalEventBytes, leafHash } = await import('../../src/audit/canonical.js');
      const record = { ...forged, seq: 9, subject: 'mallory@example.com', prev: previous.rows[0]!.leaf_hash.toString('base64') };
      const bytes = canonicalEventBytes(record as never);
      const { code, io } = await tampered('inserted', [
        'UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 9',
        'UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000',
        `INSERT INTO audit_events (seq, time, type, outcome, body, leaf_hash) VALUES (9, now(), 'grant.issued', 'success', '${bytes.toString('utf8').replace(/'/g, "''")}', '\\x${leafHash(bytes).toString('hex')}')`,
      ]);
      expect(code).toBe(1);
      expect(io.err).toContain('at index 9:');
      expect(io.err).toMatch(/inserted/);
    });

    it('refuses a checkpoint not signed by the key', async () => {
      const forger = newKey();
      const { signCheckpoint } = await import('../../src/audit/checkpoint.js');
      const genuine = openCheckpoint((await storedCheckpoint(t.db, 20))!.note, parseVerifierKey(keyText));
      const forgedFile = join(dir, 'forged-checkpoint.txt');
      writeFileSync(forgedFile, signCheckpoint(genuine, forger, ORIGIN));
      const file = join(dir, 'for-forged.jsonl');
      writeFileSync(file, await collect(exportAuditEvents(t.db, { size: 20 }, 'jsonl')));
      const io = captureIO(dir);
      expect(await main(['audit', 'verify', '--export', file, '--checkpoint', forgedFile, '--key', keyText], io)).toBe(1);
      expect(io.err).toMatch(/NOT VERIFIED: checkpoint: .*no signature by broker\.test\/audit/);
      // and a signature by the right name with the wrong key
      const altered = (await storedCheckpoint(t.db, 20))!.note.replace('\n20\n', '\n19\n');
      writeFileSync(forgedFile, altered);
      const io2 = captureIO(dir);
      expect(await main(['audit', 'verify', '--export', file, '--checkpoint', forgedFile, '--key', keyText], io2)).toBe(1);
      expect(io2.err).toMatch(/does not verify/);
    });

    it('proves with an older checkpoint that the log only grew, and catches a rewritten history', async () => {
      const older = join(dir, 'older.txt');
      const { signCheckpoint } = await import('../../src/audit/checkpoint.js');
      writeFileSync(older, signCheckpoint({ origin: ORIGIN, treeSize: 10, rootHash: await checkpointer.tree.root(10), extensions: [] }, key, ORIGIN));
      const ok = await verifyExportOf(t.db, 'grown', ['--since', older]);
      expect(ok.io.out).toMatch(/the log only grew since size 10/);
      expect(ok.code).toBe(0);
      writeFileSync(older, signCheckpoint({ origin: ORIGIN, treeSize: 10, rootHash: await checkpointer.tree.root(9), extensions: [] }, key, ORIGIN));
      const rewritten = await verifyExportOf(t.db, 'rewritten', ['--since', older]);
      expect(rewritten.code).toBe(1);
      expect(rewritten.io.err).toMatch(/not_consistent/);
    });
  });
});

describe('when appends arrive', () => {
  let t: Awaited<ReturnType<typeof createMigratedDatabase>>;
  beforeAll(async () => {
    t = await createMigratedDatabase();
  });
  afterAll(async () => t.drop());

  /** The log's database, counting the statements sent to it. */
  function countingDatabase() {
    const sent: number[] = [];
    const db = { query: (text: string, values?: readonly unknown[]) => (sent.push(sent.length), t.db.query(text, values)) } as unknown as Database;
    return { db, sent };
  }

  it('sends a lone append to an idle log at once, without waiting for a turn of the event loop', async () => {
    const { db, sent } = countingDatabase();
    const log = new AuditLog(db, new ManualClock());
    try {
      let sentBeforeTurn: boolean | undefined;
      setImmediate(() => (sentBeforeTurn = sent.length > 0));
      const record = await log.append(grantEvent(1));
      expect(sentBeforeTurn).toBe(true);
      expect(record.requestId).toBe('req-1');
    } finally {
      await log.close();
    }
  });

  it('commits appends made in the same synchronous run in one statement, and those that arrive meanwhile in the next', async () => {
    const { db, sent } = countingDatabase();
    const log = new AuditLog(db, new ManualClock());
    try {
      const first = Promise.all([log.append(grantEvent(2)), log.append(grantEvent(3)), log.append(grantEvent(4))]);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const later = Promise.all([log.append(grantEvent(5)), log.append(grantEvent(6))]);
      const records = [...(await first), ...(await later)];
      // One statement reads the head this log has not seen yet; then one per batch.
      expect(sent.length).toBeLessThanOrEqual(3);
      expect(records.map((r) => r.seq)).toEqual([...records.map((r) => r.seq)].sort((a, b) => a - b));
      expect(new Set(records.map((r) => r.seq)).size).toBe(5);
    } finally {
      await log.close();
    }
  });
});

describe('grant rows written with their events', () => {
  let t: Awaited<ReturnType<typeof createMigratedDatabase>>;
  beforeAll(async () => {
    t = await createMigratedDatabase();
  });
  afterAll(async () => t.drop());

  const newGrant = (id: string) => ({
    id, status: 'issuing', issuer: 'dev', subject: 'ada', claims: { team: 'x' }, rule: 'r', policy_hash: 'h', kind: 'aws', target: 'prod',
    scope: { role: 'deploy' }, reason: null, request_id: 'req', created_at: '2026-11-26T00:00:00.000Z', expires_at: '2026-11-26T00:15:00.000Z', revoke_on_expiry: false,
  });
  const grantStatus = async (id: string) => (await t.db.query('SELECT status, provider_ref FROM grants WHERE id = $1', [id])).rows[0];

  it('inserts the row with the intent and activates it with the result, once each, even when another writer moved the head', async () => {
    const log = new AuditLog(t.db, new ManualClock());
    const other = new AuditLog(t.db, new ManualClock());
    const id = randomUUID();
    try {
      await log.append(grantEvent(1)); // this log now believes it knows the head...
      await other.append(grantEvent(2)); // ...which another writer then moves, so the next batch is rebuilt
      await log.appendWith({ ...grantEvent(3), type: 'grant.requested', outcome: 'intent', grantId: id }, { insert: newGrant(id) });
      expect(await grantStatus(id)).toEqual({ status: 'issuing', provider_ref: null });
      const result = await log.appendWith({ ...grantEvent(4), grantId: id }, { activate: { id, issuedAt: new Date('2026-11-26T00:00:01Z'), providerRef: 'ASIAEXAMPLE' } });
      expect(result.grant).toMatchObject({ id, status: 'active', provider_ref: 'ASIAEXAMPLE' });
      expect(result.record.grantId).toBe(id);
      expect((await t.db.query('SELECT count(*)::int AS n FROM grants WHERE id = $1', [id])).rows[0]).toEqual({ n: 1 });
    } finally {
      await log.close();
      await other.close();
    }
  });

  it('activates nothing for a grant that is no longer issuing, and says so', async () => {
    const log = new AuditLog(t.db, new ManualClock());
    const id = randomUUID();
    try {
      await log.appendWith({ ...grantEvent(5), grantId: id }, { insert: newGrant(id) });
      await t.db.query(`UPDATE grants SET status = 'revoking' WHERE id = $1`, [id]);
      const result = await log.appendWith({ ...grantEvent(6), grantId: id }, { activate: { id, issuedAt: new Date(), providerRef: 'x' } });
      expect(result.grant).toBeUndefined();
      expect(await grantStatus(id)).toEqual({ status: 'revoking', provider_ref: null });
    } finally {
      await log.close();
    }
  });

  it('writes neither the event nor the row when the event cannot be written', async () => {
    const log = new AuditLog(t.db, new ManualClock());
    const id = randomUUID();
    await t.db.query(`ALTER TABLE audit_events ADD CONSTRAINT intent_down CHECK (type <> 'grant.requested') NOT VALID`);
    try {
      await expect(log.appendWith({ ...grantEvent(7), type: 'grant.requested', outcome: 'intent', grantId: id }, { insert: newGrant(id) })).rejects.toMatchObject({ code: 'audit_unavailable' });
      expect(await grantStatus(id)).toBeUndefined();
      expect((await t.db.query('SELECT count(*)::int AS n FROM audit_events WHERE grant_id = $1', [id])).rows[0]).toEqual({ n: 0 });
    } finally {
      await t.db.query('ALTER TABLE audit_events DROP CONSTRAINT intent_down');
      await log.close();
    }
  });
});

describe('appends from two brokers at once', () => {
  let t: Awaited<ReturnType<typeof createMigratedDatabase>>;
  afterAll(async () => t.drop());

  it('as two processes, produce one consistent tree with every event exactly once', async () => {
    t = await createMigratedDatabase();
    const clock = new ManualClock();
    // Two OS processes, each with its own pool and AuditLog, as two replicas would be.
    const script = fileURLToPath(new URL('../support/append-process.mjs', import.meta.url));
    const exits = await Promise.all(
      ['broker-0', 'broker-1'].map(
        (name) =>
          new Promise<number | null>((resolve, reject) => {
            const child = spawn(process.execPath, [script, t.url, name, '5000'], { stdio: ['ignore', 'ignore', 'inherit'] });
            child.on('error', reject);
            child.on('exit', (code) => resolve(code));
          }),
      ),
    );
    expect(exits).toEqual([0, 0]);
    {
      const counts = await t.db.query<{ n: string; distinct_requests: string; max: string }>(
        'SELECT count(*) AS n, count(DISTINCT request_id) AS distinct_requests, max(seq) AS max FROM audit_events',
      );
      expect(counts.rows[0]).toEqual({ n: '10000', distinct_requests: '10000', max: '9999' });
      const key = newKey();
      const checkpoint = await new Checkpointer({ db: t.db, clock, key, origin: ORIGIN }).signNow();
      const report = await verifyAuditExport({
        events: (async function* () {
          yield* exportAuditEvents(t.db, {}, 'jsonl');
        })(),
        checkpoint: checkpoint.note,
        key: verifierKey(ORIGIN, key),
      });
      expect(report.problem).toBeUndefined();
      expect(report).toMatchObject({ ok: true, events: 10000 });
    }
  });
});

describe('when the audit table cannot be written', () => {
  let t: Awaited<ReturnType<typeof createMigratedDatabase>>;
  afterAll(async () => t.drop());

  it('rejects every append in the batch with audit_unavailable', async () => {
    t = await createMigratedDatabase();
    const role = `lk_ro_${randomUUID().slice(0, 8)}`;
    await t.db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'ro-password'`);
    await t.db.query(`GRANT SELECT ON audit_events TO ${role}`);
    const url = new URL(t.url);
    url.username = role;
    url.password = 'ro-password';
    const db = new Database(url.toString(), 2);
    const log = new AuditLog(db, new ManualClock());
    try {
      const results = await Promise.allSettled([log.append(grantEvent(1)), log.append(grantEvent(2)), log.append(grantEvent(3))]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'audit_unavailable', status: 503 });
      }
      const rows = await t.db.query('SELECT count(*)::int AS n FROM audit_events');
      expect(rows.rows[0]).toEqual({ n: 0 });
    } finally {
      await log.close();
      await db.close();
      await t.db.query(`DROP OWNED BY ${role}`);
      await t.db.query(`DROP ROLE ${role}`);
    }
  });

  it('fails closed when another writer holds the table past the lock timeout', async () => {
    const blocker = new pg.Client({ connectionString: t.url });
    await blocker.connect();
    const log = new AuditLog(t.db, new ManualClock(), undefined, { lockTimeoutMs: 200 });
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE');
      await expect(log.append(grantEvent(1))).rejects.toMatchObject({ code: 'audit_unavailable' });
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
      await log.close();
    }
  });
});
