import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startBroker, type Broker, type BrokerOptions } from '../../src/broker.js';
import type { Clock } from '../../src/clock.js';
import { validateConfig, type Config } from '../../src/config/load.js';
import { providerKinds } from '../../src/providers/registry.js';
import { createMigratedDatabase } from './database.js';
import { TestOidcIssuer } from './oidc-issuer.js';

export interface TestBroker {
  readonly broker: Broker;
  readonly url: string;
  readonly issuer: TestOidcIssuer;
  readonly databaseUrl: string;
  readonly config: Config;
  readonly dataDir: string;
  /** Calls the broker's API with a bearer token; returns status, headers and parsed body. */
  call(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<ApiAnswer>;
  close(): Promise<void>;
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly contentType: string;
  readonly body: any;
}

/** Calls a broker's HTTP API the way a client would. */
export async function callApi(url: string, method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, contentType: res.headers.get('content-type') ?? '', body };
}

/**
 * A broker on a fresh database and data folder, trusting a local OIDC issuer
 * named `gh` (GitHub-shaped tokens, `preset: github`) as configured by
 * `configure(issuerUrl)`. Dev mode is on so certificate targets get a generated CA.
 */
export async function startTestBroker(options: {
  configure: (issuer: TestOidcIssuer) => Record<string, unknown>;
  clock?: Clock;
  devMode?: boolean;
  broker?: Partial<BrokerOptions>;
  issuer?: TestOidcIssuer;
  databaseUrl?: string;
}): Promise<TestBroker> {
  const issuer = options.issuer ?? (await TestOidcIssuer.start(options.clock ? { clock: options.clock } : {}));
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-broker-'));
  const db = options.databaseUrl ? undefined : await createMigratedDatabase();
  const databaseUrl = options.databaseUrl ?? (db as NonNullable<typeof db>).url;
  await db?.db.close();
  const config = validateConfig({ data_dir: dataDir, ...options.configure(issuer) }, 'test.yaml', providerKinds);
  const broker = await startBroker({
    config,
    devMode: options.devMode ?? true,
    databaseUrl,
    port: 0,
    logger: pino({ level: process.env['LATCHKEY_TEST_LOG'] ?? 'silent' }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...options.broker,
  });
  return {
    broker,
    url: broker.url,
    issuer,
    databaseUrl,
    config,
    dataDir,
    call: (method, path, o) => callApi(broker.url, method, path, o),
    async close() {
      await broker.close();
      if (!options.issuer) await issuer.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An `issuers[]` entry treating the test issuer as a GitHub (Enterprise Server) issuer. */
export function githubIssuer(issuer: TestOidcIssuer, name = 'gh'): Record<string, unknown> {
  return { name, preset: 'github', issuer: issuer.url, audience: issuer.audience, allow_insecure_http: true };
}
