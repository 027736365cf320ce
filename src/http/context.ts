import type { Logger } from 'pino';
import type { AuditWriter } from '../audit/types.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import type { RoleName } from '../config/schema.js';
import type { GrantService } from '../grants/service.js';
import type { IdentityVerifier, VerifiedIdentity } from '../identity/types.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { Database } from '../store/database.js';
import type { Metrics } from './metrics.js';
import type { TargetProvider } from '../providers/provider.js';

/** What every route may use. Built once by `createBroker`. */
export interface AppContext {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly db: Database;
  readonly audit: AuditWriter;
  readonly policy: CompiledPolicy;
  readonly verifier: IdentityVerifier;
  readonly grants: GrantService;
  readonly metrics: Metrics;
  /** Opened targets by name (a target that failed to open is absent; see `targetErrors`). */
  readonly targets: ReadonlyMap<string, TargetProvider>;
  /** Targets that failed to open, with the reason (kept, not fatal: as smallstep keeps a broken provisioner). */
  readonly targetErrors: ReadonlyMap<string, string>;
  /** True under `latchkey dev`. */
  readonly devMode: boolean;
  /** Folder for generated keys and the embedded database. */
  readonly dataDir: string;
  /** The broker's public URL (for links and the dev issuer). */
  readonly publicUrl: string;
}

/** The authenticated caller of a request (in `res.locals.caller`). */
export interface Caller {
  readonly identity: VerifiedIdentity;
  readonly roles: ReadonlySet<RoleName>;
}

/** Per-request facts every audit event carries. */
export interface RequestFacts {
  readonly requestId: string;
  readonly clientAddress: string;
}
