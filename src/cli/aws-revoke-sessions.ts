import { InvalidRequest } from '../errors.js';
import { callBroker, connectToBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * `latchkey aws revoke-sessions --target T --role R`: asks the broker (admin
 * role) to deny every session of the role issued before now, since STS
 * credentials cannot be revoked one by one. Prints what was applied.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('aws revoke-sessions', args, {
    target: { type: 'string' },
    role: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
    audience: { type: 'string' },
    json: { type: 'boolean' },
  });
  const target = values['target'] as string | undefined;
  const role = values['role'] as string | undefined;
  if (!target || !role) throw new InvalidRequest('latchkey aws revoke-sessions: --target and --role are required');
  const { url, token } = await connectToBroker(values, io, 'read');
  const answer = await callBroker<Record<string, unknown>>(url, 'POST', `/v1/targets/${encodeURIComponent(target)}/aws/revoke-sessions`, {
    token,
    body: { role },
  });
  if (values['json']) {
    io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  } else {
    io.stdout.write(`revoked every session of ${String(answer['roleArn'])} issued before ${String(answer['revokedSessionsIssuedBefore'])} (inline policy ${String(answer['policyName'])})\n`);
  }
  return 0;
};
