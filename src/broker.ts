import { mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { AuditLog } from './audit/log.js';
import { systemClock, type Clock } from './clock.js';
import { configErrorIn, type Config } from './config/load.js';
import { ConfigError, ListenFailed, isLatchkeyError, type LatchkeyError } from './errors.js';
import { ExpiryScheduler } from './grants/expiry.js';
import { SubjectRateLimiter } from './grants/rate-limit.js';
import { reconcile } from './grants/reconcile.js';
import { GrantService } from './grants/service.js';
import { createApp, type MountedRouter } from './http/app.js';
import type { AppContext } from './http/context.js';
import { Metrics } from './http/metrics.js';
import { awsSessionRoutes } from './http/routes/aws-sessions.js';
import { devIssuerRoutes } from './http/routes/dev-issuer.js';
import { loginRoutes } from './http/routes/login.js';
import { DevIssuer } from './identity/dev-issuer.js';
import { PostgresReplayStore } from './identity/replay-store.js';
import { createIdentityVerifier } from './identity/verifier.js';
import { compilePolicy } from './policy/compile.js';
import { lintPolicy } from './policy/lint.js';
import type { TargetProvider } from './providers/provider.js';
import { providerKinds } from './providers/registry.js';
import { LOG_REDACTION } from './secret.js';
import { Database } from './store/database.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './store/embedded.js';
import { migrate } from './store/migrate.js';
import { auditModule } from './audit/module.js';

export interface BrokerOptions {
  readonly config: Config;
  /** `latchkey dev`: embedded database, generated keys, the development issuer. */
  readonly devMode?: boolean;
  /** Overrides the config's database (tests). Without either, dev mode embeds one. */
  readonly databaseUrl?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Overrides `server.port` (0 picks a free port). */
  readonly port?: number;
  readonly host?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How long a grant may stay `issuing` before reconciliation treats it as abandoned (ms). */
  readonly issuingGraceMs?: number;
  /** Longest sleep of the expiry scheduler (ms). */
  readonly expiryMaxSleepMs?: number;
  /** Called once the database is up and migrated, before targets open (dev mode seeds demo data here). */
  /** Fault injection for crash-safety tests (see GrantServiceDeps.afterProviderIssue). */
  readonly afterProviderIssue?: (grantId: string) => void;
  readonly beforeTargets?: (db: { url: string; embedded?: EmbeddedDatabase }) => Promise<void>;
}

/** A running broker. */
export interface Broker {
  readonly url: string;
  readonly context: AppContext;
  readonly server: Server;
  readonly scheduler: ExpiryScheduler;
  readonly devIssuer?: DevIssuer;
  readonly embedded?: EmbeddedDatabase;
  /** Runs orphan reconciliation now. */
  reconcile(): ReturnType<typeof reconcile>;
  /** Stops accepting, finishes in-flight requests, stops timers, closes targets and the database. */
  close(): Promise<void>;
}

/** The database URL the configuration names: `database.url_env` first, then `database.url_file`; undefined when neither is set. */
export function databaseUrlFrom(config: Config, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const fromEnv = env[config.database.url_env];
  if (fromEnv) return fromEnv;
  if (config.database.url_file) {
    try {
      return readFileSync(config.database.url_file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`${config.source}: database.url_file: cannot read ${config.database.url_file}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/**
 * Starts a broker: database (embedded or given), migrations, identity, policy,
 * targets, audit, the HTTP server, the expiry scheduler and reconciliation.
 */
export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const { config } = options;
  const devMode = options.devMode ?? false;
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  // JSON lines on stdout, written asynchronously: lines that arrive while a write is in flight go out
  // together, so busy periods do not pay a system call per audit line, and a quiet broker's lines
  // still appear at once. The database, not stdout, is the record; flushed on close.
  const logger =
    options.logger ??
    pino(
      { level: config.server.log_level, ...LOG_REDACTION, base: { service: 'latchkey' } },
      pino.destination({ dest: 1, sync: false }),
    );
  const dataDir = resolve(config.data_dir);
  const host = options.host ?? config.server.host;
  if (!devMode && !config.server.public_url && ['0.0.0.0', '::', ''].includes(host)) {
    // The URL goes into audit checkpoint origins and the OpenAPI document: "0.0.0.0" is nobody's address.
    throw new ConfigError(`${config.source}: server.public_url: required when server.host is ${host || 'empty'} (the URL callers use, e.g. https://latchkey.example.com)`);
  }
  if (devMode) mkdirSync(dataDir, { recursive: true });

  // Database: given, or embedded (dev mode only; production must name its server).
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = options.databaseUrl ?? databaseUrlFrom(config, env);
  if (!databaseUrl) {
    if (!devMode) {
      throw configErrorIn(config.source, new ConfigError(`no database: set ${config.database.url_env} (or database.url_file) to a PostgreSQL URL; only latchkey dev starts an embedded one`));
    }
    embedded = await startEmbeddedDatabase(dataDir, logger);
    databaseUrl = embedded.url;
  }
  const db = new Database(databaseUrl, config.database.pool_size);
  // Grant state and used token ids commit without waiting for the disk: each is followed by a
  // synchronous audit commit before any answer leaves the broker, and that WAL flush covers them.
  // Half the fsyncs per grant; nothing a caller was told can be lost in a crash.
  const stateDb = new Database(databaseUrl, config.database.pool_size, { asynchronousCommit: true });
  const cleanup: (() => Promise<void>)[] = [async () => stateDb.close(), async () => db.close(), async () => embedded?.stop()];
  // The HTTP server stops first: in-flight requests finish (their audit records included)
  // before the audit log, targets and pools they use are closed.
  let closeServer: () => Promise<void> = async () => {};
  const fail = async (err: unknown): Promise<never> => {
    await closeServer().catch(() => {});
    for (const step of cleanup) await step().catch(() => {});
    // Issuers, keys and targets report the dotted path they check; the file is named here, once.
    throw err instanceof ConfigError ? configErrorIn(config.source, err) : err;
  };

  try {
    const migrated = await migrate(db);
    if (migrated.applied.length) logger.info({ applied: migrated.applied }, 'database schema migrated');
    await options.beforeTargets?.({ url: databaseUrl, ...(embedded ? { embedded } : {}) });

    const policy = compilePolicy(config);
    for (const finding of lintPolicy(config).filter((f) => f.severity === 'warning')) {
      logger.warn({ rule: finding.rule, code: finding.code, path: finding.path }, `policy: ${finding.message}`);
    }

    // Listen first: the dev issuer's URL contains the port. Until the app is attached,
    // requests are answered 503 rather than left hanging.
    const server = createServer();
    const starting = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      res.end(JSON.stringify({ type: 'https://latchkey.dev/problems/starting', title: 'Starting', status: 503, code: 'starting', detail: 'the broker is starting' }));
    };
    server.on('request', starting);
    const wantedPort = options.port ?? config.server.port;
    await new Promise<void>((ok, bad) => {
      server.once('error', (err) => bad(listenFailure(err, host, wantedPort)));
      server.listen(wantedPort, host, () => ok());
    });
    closeServer = () =>
      new Promise<void>((ok) => {
        const force = setTimeout(() => server.closeAllConnections(), 10_000);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          ok();
        });
        server.closeIdleConnections();
      });
    const { port } = server.address() as AddressInfo;
    const publicUrl = (config.server.public_url ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');

    const devIssuer = devMode ? await DevIssuer.load(dataDir, `${publicUrl}/dev/oidc`, clock) : undefined;
    const verifier = createIdentityVerifier({
      issuers: config.issuers,
      clock,
      replay: new PostgresReplayStore(stateDb, clock),
      ...(devIssuer ? { devIssuerUrl: devIssuer.issuerUrl } : {}),
    });

    const metrics = new Metrics();
    const audit = new AuditLog(db, clock, logger.child({ stream: 'audit' }));
    cleanup.unshift(async () => (audit as { close?: () => Promise<void> }).close?.());

    const targets = new Map<string, TargetProvider>();
    const targetErrors = new Map<string, string>();
    // Registered before opening, so targets already open are closed if a later one stops start-up.
    cleanup.unshift(async () => {
      for (const t of targets.values()) await t.close().catch(() => {});
    });
    for (const target of Object.values(config.targets)) {
      const kind = providerKinds.find((k) => k.kind === target.kind);
      if (!kind) continue;
      try {
        targets.set(target.name, await kind.open(target.name, target.settings, { clock, logger: logger.child({ target: target.name }), dataDir, devMode }));
      } catch (err) {
        // A mistake in the file (no CA files, an unreadable key, an unset admin URL variable) will not
        // fix itself: refuse to start, naming the file and the target.
        if (isTargetMisconfigured(err)) throw configErrorIn(config.source, err, `targets.${target.name}`);
        // Anything else (a backend that is down) is kept with its reason, as smallstep keeps a
        // provisioner that failed to initialise: its grants answer 503, the other targets serve.
        const reason = (err as Error).message;
        targetErrors.set(target.name, reason);
        logger.error({ target: target.name, reason }, 'target failed to open; its grants will answer 503 until it is fixed');
      }
    }

    // The scheduler needs the service and the service wakes the scheduler.
    let scheduler: ExpiryScheduler | undefined;
    const grants = new GrantService({
      db: stateDb, audit, policy, clock, logger, kinds: providerKinds, targets, targetErrors,
      onExpiryScheduled: (at) => scheduler?.wake(at),
      approvalWindowSeconds: config.server.approval_window,
      rateLimiter: new SubjectRateLimiter({ perMinute: config.server.rate_limit.per_minute, burst: config.server.rate_limit.burst }, clock),
      ...(options.afterProviderIssue ? { afterProviderIssue: options.afterProviderIssue } : {}),
      observe: (kind, outcome, seconds) => metrics.observeGrant(providerKinds.some((k) => k.kind === kind) ? kind : 'unknown', outcome, seconds),
    });
    scheduler = new ExpiryScheduler({
      db: stateDb, service: grants, audit, clock, logger,
      ...(options.expiryMaxSleepMs === undefined ? {} : { maxSleepMs: options.expiryMaxSleepMs }),
      onPendingRevocations: (n) => metrics.pendingRevocations.set(n),
    });

    const context: AppContext = { config, clock, logger, db, audit, policy, verifier, grants, metrics, publicUrl, targets, targetErrors, devMode, dataDir };
    const audited = await auditModule(context, { checkpointIntervalMs: config.server.checkpoint_interval * 1000 });
    cleanup.unshift(async () => audited.stop());
    const mounts: MountedRouter[] = [...audited.mounts];
    // Provider-specific admin routes (absolute paths under /v1).
    mounts.push({ path: '/', router: awsSessionRoutes(context) });
    mounts.push({ path: '/', router: loginRoutes(context) });
    if (devIssuer) mounts.push({ path: '/dev/oidc', router: devIssuerRoutes(devIssuer) });
    server.off('request', starting);
    server.on('request', createApp(context, mounts));

    const runReconcile = () => reconcile({ db: stateDb, store: grants.store, audit, clock, logger, targets, ...(options.issuingGraceMs === undefined ? {} : { issuingGraceMs: options.issuingGraceMs }) });
    const startup = await runReconcile().catch((err) => {
      logger.warn({ err: (err as Error).message }, 'start-up reconciliation failed; will retry');
      return undefined;
    });
    if (startup && (startup.orphansRevoked || startup.staleGrantsFailed)) logger.warn(startup, 'reconciliation cleaned up after an earlier run');
    const reconcileTimer = setInterval(() => {
      runReconcile().catch((err) => logger.warn({ err: (err as Error).message }, 'reconciliation failed; will retry'));
    }, config.server.reconcile_interval * 1000);
    reconcileTimer.unref();
    scheduler.start();
    const activeScheduler = scheduler;
    cleanup.unshift(async () => {
      clearInterval(reconcileTimer);
      await activeScheduler.stop();
    });

    let closing: Promise<void> | undefined;
    return {
      url: publicUrl,
      context,
      server,
      scheduler,
      ...(devIssuer ? { devIssuer } : {}),
      ...(embedded ? { embedded } : {}),
      reconcile: runReconcile,
      close() {
        closing ??= (async () => {
          await closeServer();
          for (const step of cleanup) await step().catch((err) => logger.warn({ err: (err as Error).message }, 'shutdown step failed'));
          logger.flush();
        })();
        return closing;
      },
    };
  } catch (err) {
    return fail(err);
  }
}

/** A target that failed to open because of its configuration rather than its backend. */
function isTargetMisconfigured(err: unknown): err is LatchkeyError {
  return isLatchkeyError(err) && (err.code === 'config_invalid' || err.code === 'provider_misconfigured');
}

/** Why the HTTP server could not listen, in words an operator can act on. */
function listenFailure(err: NodeJS.ErrnoException, host: string, port: number): ListenFailed {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? 'the address is already in use (is another latchkey running?); choose another port with --port or server.port'
      : err.code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges); choose another port with --port or server.port'
        : err.code === 'EADDRNOTAVAIL'
          ? 'no network interface of this host has that address; check server.host'
          : err.message;
  return new ListenFailed(`cannot listen on ${where}: ${why}`, {}, { cause: err });
}
