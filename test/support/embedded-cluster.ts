import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anyFreePort, loadEmbeddedPostgres, stopServerOnExit } from '../../src/store/embedded.js';

/** A throwaway PostgreSQL cluster with password (SCRAM) authentication. */
export interface TestCluster {
  readonly port: number;
  readonly superuser: string;
  readonly password: string;
  /** Superuser URL for database `postgres`. */
  readonly url: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export const freePort = anyFreePort;

/** Starts a fresh cluster in a temp folder (~2 s). `postgresFlags` e.g. ['-c', 'log_statement=all']. */
export async function startCluster(options: { postgresFlags?: string[]; onLog?: (line: string) => void } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'));
  rmSync(dir, { recursive: true, force: true });
  const port = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  // Without its exit hooks: they would force exit code 0 on the test runner (a failed run reported green).
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const onLog = options.onLog ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: options.postgresFlags ?? [],
    onLog,
    // Errors (a failed useradd, a client's error event) go to the same sink, as text.
    onError: (messageOrError) => onLog(String(messageOrError)),
  });
  await pg.initialise();
  await pg.start();
  const forgetExitHook = stopServerOnExit(pg);
  const urlFor = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return {
    port,
    superuser: 'postgres',
    password,
    url: urlFor('postgres'),
    urlFor,
    async stop() {
      forgetExitHook();
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
