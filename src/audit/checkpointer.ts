import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Database } from '../store/database.js';
import { signCheckpoint, verifierKey, type AuditSigningKey } from './checkpoint.js';
import { LogTree } from './tree.js';

const CHECKPOINT_LOCK = 0x6c6b_0003; // one signer at a time across replicas: one checkpoint per size

/** A checkpoint as stored and served. */
export interface StoredCheckpoint {
  readonly origin: string;
  readonly treeSize: number;
  /** Base64 root hash. */
  readonly rootHash: string;
  readonly keyName: string;
  readonly signedAt: string;
  /** The signed note, exactly as signed. */
  readonly note: string;
}

interface CheckpointRow {
  tree_size: string;
  root_hash: Buffer;
  origin: string;
  key_name: string;
  signed_at: Date;
  note: string;
}

function fromRow(row: CheckpointRow): StoredCheckpoint {
  return {
    origin: row.origin,
    treeSize: Number(row.tree_size),
    rootHash: row.root_hash.toString('base64'),
    keyName: row.key_name,
    signedAt: row.signed_at.toISOString(),
    note: row.note,
  };
}

/** The checkpoint origin (and key name) of a broker: its public URL without scheme, plus `/audit`. */
export function auditOrigin(publicUrl: string): string {
  const url = new URL(publicUrl);
  return `${url.host}${url.pathname.replace(/\/+$/, '')}/audit`;
}

/**
 * Signs checkpoints of the audit tree at a fixed interval and on demand, and
 * stores every one. Replicas take an advisory lock, so a size is signed once.
 */
export class Checkpointer {
  readonly tree: LogTree;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      readonly db: Database;
      readonly clock: Clock;
      readonly key: AuditSigningKey;
      /** Log origin; also the signed-note key name. */
      readonly origin: string;
      readonly logger?: Logger;
      readonly tree?: LogTree;
    },
  ) {
    this.tree = deps.tree ?? new LogTree(deps.db);
  }

  get origin(): string {
    return this.deps.origin;
  }

  /** The signed-note verifier key auditors use: `<origin>+<hash>+<key>`. */
  get verifierKey(): string {
    return verifierKey(this.deps.origin, this.deps.key);
  }

  get publicKeyRaw(): Buffer {
    return this.deps.key.publicKeyRaw;
  }

  /** Signs the current tree unless a checkpoint of this size exists; returns the checkpoint of the current size. */
  async signNow(): Promise<StoredCheckpoint> {
    const run = this.#running.then(() => this.#sign());
    this.#running = run.catch(() => {});
    return run;
  }

  async #sign(): Promise<StoredCheckpoint> {
    return this.deps.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [CHECKPOINT_LOCK]);
      const size = await new LogTree(tx).size();
      const existing = await tx.query<CheckpointRow>('SELECT * FROM audit_checkpoints WHERE tree_size = $1', [size]);
      if (existing.rows[0]) return fromRow(existing.rows[0]);
      const rootHash = await this.tree.root(size);
      const signedAt = this.deps.clock.now();
      const note = signCheckpoint(
        { origin: this.deps.origin, treeSize: size, rootHash, extensions: [`time ${signedAt.toISOString()}`] },
        this.deps.key,
        this.deps.origin,
      );
      const inserted = await tx.query<CheckpointRow>(
        `INSERT INTO audit_checkpoints (tree_size, root_hash, origin, key_name, signed_at, note)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [size, rootHash, this.deps.origin, this.deps.origin, signedAt, note],
      );
      this.deps.logger?.info({ treeSize: size, rootHash: rootHash.toString('base64') }, 'audit checkpoint signed');
      return fromRow(inserted.rows[0] as CheckpointRow);
    });
  }

  /** Signs every `intervalMs` while the log grows. */
  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.signNow().catch((err) => this.deps.logger?.error({ err: { message: (err as Error).message } }, 'audit checkpoint failed'));
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a signing in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

/** The newest stored checkpoint, or one of a given size. */
export async function storedCheckpoint(db: Database, size?: number): Promise<StoredCheckpoint | undefined> {
  const result =
    size === undefined
      ? await db.query<CheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1')
      : await db.query<CheckpointRow>('SELECT * FROM audit_checkpoints WHERE tree_size = $1', [size]);
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}
