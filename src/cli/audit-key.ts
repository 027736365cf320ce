import { brokerUrl, callBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/** `latchkey audit key`: prints the verifier key that checks audit checkpoints (public, no token). */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('audit key', args, { url: { type: 'string' }, json: { type: 'boolean' } });
  const key = await callBroker<{ verifierKey: string }>(brokerUrl(values['url'] as string | undefined, io), 'GET', '/v1/audit/key');
  io.stdout.write(values['json'] ? `${JSON.stringify(key, null, 2)}\n` : `${key.verifierKey}\n`);
  return 0;
};
