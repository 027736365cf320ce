// A throwaway embedded PostgreSQL for the benchmark (the same package `latchkey dev` uses).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Starts a fresh cluster with SCRAM authentication in /tmp (default
 * settings: fsync and synchronous_commit on, so every commit is durable).
 * Returns `{ pid, url, urlFor(db), createDatabase(name), stop() }`.
 */
export async function startCluster() {
  // The parent must be traversable by the postgres user when we run as root.
  const parent = mkdtempSync(join(tmpdir(), 'latchkey-bench-pg-'));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'data');
  // The server (the postgres user, when we run as root) makes its socket here.
  const sockets = join(parent, 'sockets');
  mkdirSync(sockets, { mode: 0o1777 });
  chmodSync(sockets, 0o1777);
  const port = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  // latchkey's loader drops the package's exit hooks (they force exit code 0 and throw at exit).
  const { loadEmbeddedPostgres, stopServerOnExit } = await import(new URL('../../dist/store/embedded.js', import.meta.url).href);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    // Clients on this machine reach it through its Unix socket, as psql does by default (see bench/README.md).
    postgresFlags: ['-c', 'max_connections=300', '-c', `unix_socket_directories=${sockets}`],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  stopServerOnExit(server);
  const socket = process.env.LATCHKEY_BENCH_TCP ? '' : `?host=${encodeURIComponent(sockets)}`;
  const urlFor = (database) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}${socket}`;
  return {
    port,
    /** The postmaster's pid (first line of postmaster.pid): its process tree is the server's CPU. */
    pid: Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]),
    url: urlFor('postgres'),
    urlFor,
    async createDatabase(name) {
      const admin = new pg.Client({ connectionString: urlFor('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      return urlFor(name);
    },
    async stop() {
      await server.stop().catch(() => {});
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
