import { createWriteStream, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidRequest } from '../errors.js';
import { filterOptions, filterQuery } from './audit-list.js';
import { BrokerRefused, callBroker, connectToBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * `latchkey audit export [--format jsonl|csv] [--out FILE] [--checkpoint-out FILE] [filters]`.
 * With --checkpoint-out the newest signed checkpoint is saved too and the
 * export stops at its size, so the pair verifies offline as it is.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('audit export', args, {
    ...filterOptions(), format: { type: 'string' }, out: { type: 'string' }, 'checkpoint-out': { type: 'string' }, url: { type: 'string' }, token: { type: 'string' },
  });
  const format = (values['format'] as string | undefined) ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new InvalidRequest('--format: expected jsonl or csv');
  const { url, token } = await connectToBroker(values, io, 'read');
  const query = filterQuery(values);
  query.set('format', format);
  const checkpointOut = values['checkpoint-out'] as string | undefined;
  if (checkpointOut) {
    const checkpoint = await callBroker<{ treeSize: number; note: string }>(url, 'GET', '/v1/audit/checkpoint', { token });
    writeFileSync(resolve(io.cwd, checkpointOut), checkpoint.note);
    if (!query.has('size')) query.set('size', String(checkpoint.treeSize));
  }
  const response = await fetch(`${url}/v1/audit/export?${query}`, { headers: { authorization: `Bearer ${token}` } }).catch((err: Error) => {
    throw new BrokerRefused(503, 'broker_unreachable', `cannot reach the broker at ${url}: ${err.message}`, {});
  });
  if (!response.ok || !response.body) {
    const problem = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
    throw new BrokerRefused(response.status, problem.code ?? `http_${response.status}`, problem.detail ?? response.statusText, problem);
  }
  const out = values['out'] as string | undefined;
  const sink = out ? createWriteStream(resolve(io.cwd, out)) : new Writable({ write: (chunk, _enc, done) => { io.stdout.write(chunk.toString()); done(); } });
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), sink);
  return 0;
};
