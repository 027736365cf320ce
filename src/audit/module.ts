import type { MountedRouter } from '../http/app.js';
import type { AppContext } from '../http/context.js';
import { auditRoutes, checkpointerFor } from '../http/routes/audit.js';
import { auditUiRoutes } from '../http/ui/audit-page.js';

/** How often checkpoints are signed while the log grows. */
export const CHECKPOINT_INTERVAL_MS = 60_000;

/**
 * The audit log's optional parts, started with the broker: the checkpoint
 * signer (every minute and on demand), the auditor API at /v1/audit and the
 * auditor page at /ui/audit. Returns routers to mount and a stop function.
 */
export async function auditModule(ctx: AppContext, options: { checkpointIntervalMs?: number } = {}): Promise<{ mounts: MountedRouter[]; stop(): Promise<void> }> {
  const checkpointer = checkpointerFor(ctx);
  checkpointer.start(options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS);
  return {
    mounts: [
      { path: '/v1/audit', router: auditRoutes(ctx, checkpointer) },
      { path: '/ui/audit', router: auditUiRoutes(ctx) },
    ],
    stop: () => checkpointer.stop(),
  };
}
