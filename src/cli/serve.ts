import { startBroker } from '../broker.js';
import { loadConfigFile } from '../config/load.js';
import { InvalidRequest } from '../errors.js';
import { providerKinds } from '../providers/registry.js';
import { parseVerbArgs, type CliVerb } from './io.js';
import { waitForShutdown } from './shutdown.js';

/**
 * `latchkey serve --config FILE`: production. No development issuer, no
 * embedded database, no generated keys: everything comes from the config.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('serve', args, { config: { type: 'string' }, port: { type: 'string' } });
  const path = (values['config'] as string | undefined) ?? io.env['LATCHKEY_CONFIG'];
  if (!path) throw new InvalidRequest('latchkey serve needs --config FILE (or LATCHKEY_CONFIG)');
  const config = loadConfigFile(path, providerKinds);
  const broker = await startBroker({ config, devMode: false, env: io.env, ...(values['port'] ? { port: Number(values['port']) } : {}) });
  broker.context.logger.info({ url: broker.url }, 'latchkey serving');
  await waitForShutdown(io);
  await broker.close();
  return 0;
};
