import { InvalidRequest } from '../errors.js';
import { callBroker, connectToBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/** Verbs acting on one grant by id: revoke, status, approve, deny. */
function grantVerb(name: string, method: 'GET' | 'POST' | 'DELETE', path: (id: string) => string): CliVerb {
  return async (args, io) => {
    const { values, positionals } = parseVerbArgs(name, args, { url: { type: 'string' }, token: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } }, true);
    const id = positionals[0];
    if (!id) throw new InvalidRequest(`usage: latchkey ${name} GRANT_ID`);
    const { url, token } = await connectToBroker(values, io, 'read');
    const grant = await callBroker<Record<string, unknown>>(url, method, path(encodeURIComponent(id)), {
      token,
      ...(method === 'POST' ? { body: values['note'] ? { note: values['note'] } : {} } : {}),
    });
    if (values['json'] || name === 'status') {
      io.stdout.write(`${JSON.stringify(grant, null, 2)}\n`);
    } else {
      io.stdout.write(`grant ${String(grant['id'])}: ${String(grant['status'])}${grant['status'] === 'revoking' ? ' (the backend is unreachable; the broker keeps retrying)' : ''}\n`);
      if (typeof grant['revocationNote'] === 'string') io.stdout.write(`note: ${grant['revocationNote']}\n`);
    }
    return 0;
  };
}

export const revoke = grantVerb('revoke', 'DELETE', (id) => `/v1/grants/${id}`);
export const status = grantVerb('status', 'GET', (id) => `/v1/grants/${id}`);
export const approve = grantVerb('approve', 'POST', (id) => `/v1/grants/${id}/approve`);
export const deny = grantVerb('deny', 'POST', (id) => `/v1/grants/${id}/deny`);

interface GrantSummary {
  id: string;
  status: string;
  kind: string;
  target: string;
  subject: string;
  rule: string;
  expiresAt: string;
  reason: string | null;
}

/** Verbs listing grants: the caller's own (`grants`), or those waiting for approval (`pending`). */
function listVerb(name: string, path: string, empty: string): CliVerb {
  return async (args, io) => {
    const { values } = parseVerbArgs(name, args, { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } });
    const { url, token } = await connectToBroker(values, io, 'read');
    const { grants } = await callBroker<{ grants: GrantSummary[] }>(url, 'GET', path, { token });
    if (values['json']) {
      io.stdout.write(`${JSON.stringify(grants, null, 2)}\n`);
      return 0;
    }
    if (grants.length === 0) {
      io.stdout.write(`${empty}\n`);
      return 0;
    }
    for (const g of grants) {
      const who = name === 'pending' ? `  by ${g.subject}` : '';
      const why = g.reason ? `  "${g.reason}"` : '';
      io.stdout.write(`${g.id}  ${g.status.padEnd(16)} ${g.kind}/${g.target}  rule ${g.rule}  until ${g.expiresAt}${who}${why}\n`);
    }
    return 0;
  };
}

export const list = listVerb('grants', '/v1/grants', 'no grants');
export const pending = listVerb('pending', '/v1/grants/pending', 'nothing waits for approval (or this token has no approver role)');

/** `latchkey whoami`: the identity the broker verified from this token, and its roles. */
export const whoami: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('whoami', args, { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } });
  const { url, token } = await connectToBroker(values, io, 'read');
  const me = await callBroker<{ issuer: string; subject: string; roles: string[]; expiresAt: string }>(url, 'GET', '/v1/whoami', { token });
  io.stdout.write(values['json'] ? `${JSON.stringify(me, null, 2)}\n` : `${me.subject} (issuer ${me.issuer}); roles: ${me.roles.join(', ') || 'none'}; token valid until ${me.expiresAt}\n`);
  return 0;
};
