// A broker process that dies (SIGKILL) right after a provider issued a
// credential and before the result is recorded: the crash-safety test's victim.
// Reads its config from LATCHKEY_CRASH_CONFIG (JSON) and prints "listening URL".
import { pino } from 'pino';
import { startBroker } from '../../dist/broker.js';
import { validateConfig } from '../../dist/config/load.js';
import { providerKinds } from '../../dist/providers/registry.js';

const config = validateConfig(JSON.parse(process.env.LATCHKEY_CRASH_CONFIG), 'crash.yaml', providerKinds);
const broker = await startBroker({
  config,
  devMode: true,
  databaseUrl: process.env.LATCHKEY_CRASH_DATABASE_URL,
  port: 0,
  logger: pino({ level: 'silent' }),
  afterProviderIssue: () => process.kill(process.pid, 'SIGKILL'),
});
process.stdout.write(`listening ${broker.url}\n`);
