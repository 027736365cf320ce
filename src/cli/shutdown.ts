import type { CliIO } from './io.js';

/** Resolves on SIGINT or SIGTERM: graceful shutdown of a long-running verb. */
export function waitForShutdown(io: CliIO): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      io.stderr.write(`latchkey: ${signal} received, shutting down\n`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
