import { createReadStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { verifyAuditExport } from '../audit/verify.js';
import { InvalidRequest } from '../errors.js';
import { parseVerbArgs, type CliVerb } from './io.js';

function readText(path: string, what: string, cwd: string): string {
  try {
    return readFileSync(resolve(cwd, path), 'utf8');
  } catch (err) {
    throw new InvalidRequest(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}

/**
 * `latchkey audit verify --export FILE --checkpoint FILE --key KEY [--since FILE]`:
 * offline, from the export, a signed checkpoint and the public key alone.
 * Exit 0 when intact; 1 with the first index that is wrong.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('audit verify', args, {
    export: { type: 'string' },
    checkpoint: { type: 'string' },
    key: { type: 'string' },
    'key-file': { type: 'string' },
    since: { type: 'string' },
    json: { type: 'boolean' },
  });
  const exportPath = values['export'] as string | undefined;
  const checkpointPath = values['checkpoint'] as string | undefined;
  if (!exportPath || !checkpointPath) throw new InvalidRequest('--export FILE (JSONL) and --checkpoint FILE (signed note) are required');
  const keyFile = values['key-file'] as string | undefined;
  const key = (values['key'] as string | undefined) ?? (keyFile ? readText(keyFile, 'key file', io.cwd) : undefined);
  if (!key) throw new InvalidRequest('--key NAME+HASH+KEY or --key-file FILE is required (print it with `latchkey audit key`)');
  const since = values['since'] as string | undefined;
  const report = await verifyAuditExport({
    events: createReadStream(resolve(io.cwd, exportPath), { highWaterMark: 1 << 20 }),
    checkpoint: readText(checkpointPath, 'checkpoint', io.cwd),
    key: key.trim(),
    since: since ? readText(since, 'older checkpoint', io.cwd) : undefined,
  });
  if (values['json']) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else if (report.ok) {
    const grew = report.consistentSince ? `; the log only grew since size ${report.consistentSince.treeSize}` : '';
    const extra = report.uncovered ? ` (${report.uncovered} later events are chained but not yet covered by a checkpoint)` : '';
    io.stdout.write(`verified: ${report.checkpoint?.treeSize} events of ${report.checkpoint?.origin} match the signed root ${report.checkpoint?.rootHash}${grew}${extra}\n`);
  } else {
    const where = report.problem?.index === undefined ? '' : ` at index ${report.problem.index}`;
    io.stderr.write(`NOT VERIFIED${where}: ${report.problem?.message} (${report.problem?.kind})\n`);
  }
  return report.ok ? 0 : 1;
};
