import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startBroker } from '../broker.js';
import { loadConfigFile } from '../config/load.js';
import { providerKinds } from '../providers/registry.js';
import type { CliIO, CliVerb } from './io.js';
import { parseVerbArgs } from './io.js';
import { waitForShutdown } from './shutdown.js';

/** examples/dev-policy.yaml of this package, wherever it is installed. */
export const DEV_POLICY_PATH = fileURLToPath(new URL('../../examples/dev-policy.yaml', import.meta.url));

/** The env var the dev policy's `dev-db` target reads its admin URL from. */
export const DEV_DB_URL_ENV = 'LATCHKEY_DEV_DB_URL';

/**
 * `latchkey dev`: a working broker in one command. Embedded PostgreSQL in
 * ./.latchkey, generated CA and signing keys, the development token issuer,
 * the sample policy, and a `demo` database with sample tables.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('dev', args, {
    config: { type: 'string' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
  });
  const configPath = (values['config'] as string | undefined) ?? io.env['LATCHKEY_CONFIG'] ?? DEV_POLICY_PATH;
  const loaded = loadConfigFile(configPath, providerKinds);
  const config = { ...loaded, data_dir: (values['data-dir'] as string | undefined) ?? io.env['LATCHKEY_DATA_DIR'] ?? loaded.data_dir };
  const port = values['port'] === undefined ? undefined : Number(values['port']);

  const broker = await startBroker({
    config,
    devMode: true,
    ...(port === undefined ? {} : { port }),
    env: io.env,
    beforeTargets: async ({ embedded, url }) => {
      const demoUrl = embedded ? embedded.urlFor('demo') : url;
      if (embedded) await createDemoDatabase(embedded.urlFor('postgres'));
      const { seedDemoSchema } = await import('../providers/postgres/demo.js');
      await seedDemoSchema(demoUrl);
      // The dev-db target reads its admin URL from the environment, as production targets do.
      process.env[DEV_DB_URL_ENV] = embedded ? embedded.urlFor('postgres') : url;
    },
  });
  printBanner(io, broker.url, configPath, config.data_dir);
  await waitForShutdown(io);
  await broker.close();
  return 0;
};

async function createDemoDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'demo'");
    if (exists.rowCount === 0) await client.query('CREATE DATABASE demo');
  } finally {
    await client.end();
  }
}

function printBanner(io: CliIO, url: string, configPath: string, dataDir: string): void {
  io.stdout.write(`
latchkey dev — broker listening on ${url}

  DEVELOPMENT MODE: the token issuer at ${url}/dev/oidc exists only in this mode
  and mints tokens for anyone who asks. Never expose this broker.

  policy     ${configPath}
  data       ${dataDir} (embedded PostgreSQL, dev CA, signing keys)

Try, in another terminal:

  export LATCHKEY_URL=${url}
  # a client certificate for team "payments"
  LATCHKEY_TOKEN=$(npx latchkey token --claim sub=alice --claim team=payments) \\
    npx latchkey grant cert --target dev-mesh --generate --out ./alice-cert
  # a 15-minute read-only login to demo.orders, straight into psql
  LATCHKEY_TOKEN=$(npx latchkey token --claim sub=alice --claim team=analytics) \\
    npx latchkey grant postgres --target dev-db --database demo --table demo.orders --exec psql

  # the audit log in the browser: paste this auditor token at ${url}/ui/audit
  npx latchkey token --claim sub=carol --claim groups:='["auditors"]'

Ctrl-C stops the broker and its database.
`);
}
