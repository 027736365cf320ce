// One broker in its own process, so its memory (VmHWM) and CPU are its own.
// Receives { config, databaseUrl } over IPC, starts latchkey's full broker in
// dev mode (dev issuer, generated CA), answers { url, dataDir, pid }; closes on
// { close: true }. Target admin URLs come through this process's environment.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';

const dist = (path) => import(new URL(`../../dist/${path}`, import.meta.url).href);

process.once('message', async ({ config: raw, databaseUrl, expiryMaxSleepMs }) => {
  try {
    const { startBroker } = await dist('broker.js');
    const { validateConfig } = await dist('config/load.js');
    const { providerKinds } = await dist('providers/registry.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-broker-'));
    // The benchmark measures throughput: lift the per-caller rate limit unless a scenario sets one.
    const server = { ...raw.server, rate_limit: raw.server?.rate_limit ?? { per_minute: 100000, burst: 100000 } };
    const config = validateConfig({ ...raw, server, data_dir: dataDir }, 'bench.yaml', providerKinds);
    const broker = await startBroker({
      config,
      devMode: true,
      databaseUrl,
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: process.env.LATCHKEY_BENCH_LOG ?? 'silent' }),
      ...(expiryMaxSleepMs ? { expiryMaxSleepMs } : {}),
    });
    process.on('message', async (message) => {
      if (!message?.close) return;
      await broker.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
      process.send({ closed: true }, () => process.exit(0));
    });
    process.send({ url: broker.url, dataDir, pid: process.pid });
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
  }
});
