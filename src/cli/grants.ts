import { InvalidRequest } from '../errors.js';
import { brokerUrl, callBroker, resolveToken } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/** Verbs acting on one grant by id: revoke, status, approve, deny. */
function grantVerb(name: string, method: 'GET' | 'POST' | 'DELETE', path: (id: string) => string): CliVerb {
  return async (args, io) => {
    const { values, positionals } = parseVerbArgs(name, args, { url: { type: 'string' }, token: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } }, true);
    const id = positionals[0];
    if (!id) throw new InvalidRequest(`usage: latchkey ${name} GRANT_ID`);
    const url = brokerUrl(values['url'] as string | undefined, io);
    const token = await resolveToken(values['token'] as string | undefined, io, { purpose: 'read', broker: url });
    const grant = await callBroker<Record<string, unknown>>(url, method, path(encodeURIComponent(id)), {
      token,
      ...(method === 'POST' ? { body: values['note'] ? { note: values['note'] } : {} } : {}),
    });
    if (values['json'] || name === 'status') {
      io.stdout.write(`${JSON.stringify(grant, null, 2)}\n`);
    } else {
      io.stdout.write(`grant ${String(grant['id'])}: ${String(grant['status'])}${grant['status'] === 'revoking' ? ' (the backend is unreachable; the broker keeps retrying)' : ''}\n`);
    }
    return 0;
  };
}

export const revoke = grantVerb('revoke', 'DELETE', (id) => `/v1/grants/${id}`);
export const status = grantVerb('status', 'GET', (id) => `/v1/grants/${id}`);
export const approve = grantVerb('approve', 'POST', (id) => `/v1/grants/${id}/approve`);
export const deny = grantVerb('deny', 'POST', (id) => `/v1/grants/${id}/deny`);
