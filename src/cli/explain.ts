import { InvalidRequest } from '../errors.js';
import { callBroker, connectToBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

interface Explanation {
  allowed: boolean;
  rule?: string;
  summary: string;
  hiddenRules: number;
  evaluations: { rule: string; matched: boolean; failure?: { condition: string; field: string; expected: unknown; actual: unknown; message: string } }[];
}

/** `latchkey explain --kind K --target T [--scope JSON]`: what the policy would decide, and why. */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('explain', args, {
    kind: { type: 'string' },
    target: { type: 'string' },
    scope: { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
    url: { type: 'string' },
    token: { type: 'string' },
  });
  if (!values['kind'] || !values['target']) throw new InvalidRequest('--kind and --target are required');
  let scope: unknown = {};
  if (values['scope']) {
    try {
      scope = JSON.parse(values['scope'] as string);
    } catch {
      throw new InvalidRequest('--scope must be JSON, e.g. \'{"database":"demo","tables":["demo.orders"]}\'');
    }
  }
  const { url, token } = await connectToBroker(values, io, 'read');
  const answer = await callBroker<Explanation>(url, 'POST', '/v1/explain', {
    token,
    body: { kind: values['kind'], target: values['target'], scope, ...(values['ttl'] ? { ttl: values['ttl'] } : {}) },
  });
  if (values['json']) {
    io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return answer.allowed ? 0 : 1;
  }
  io.stdout.write(`${answer.allowed ? 'ALLOWED' : 'DENIED'}: ${answer.summary}\n`);
  for (const e of answer.evaluations) {
    if (e.matched) io.stdout.write(`  ✓ ${e.rule}\n`);
    else if (e.failure) io.stdout.write(`  ✗ ${e.rule}: ${e.failure.message} (expected ${JSON.stringify(e.failure.expected)}, got ${JSON.stringify(e.failure.actual)})\n`);
  }
  if (answer.hiddenRules > 0) io.stdout.write(`  (${answer.hiddenRules} rule(s) that do not concern this token are not shown)\n`);
  return answer.allowed ? 0 : 1;
};
