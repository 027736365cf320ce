import { spawn } from 'node:child_process';
import { InvalidRequest } from '../errors.js';
import { connectToBroker } from './client.js';
import { claimApprovedGrant, reportPending, reportWarnings, requestGrant } from './grant-request.js';
import { formatPostgresCredential, psqlEnvironment, type PostgresCredentialFormat } from './format-postgres.js';
import { publishToGitHub } from './github-actions.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * `latchkey grant postgres --target T --database D --table schema.table ...`
 * prints the login (--format uri|env|pgpass|json) or, with --exec psql, starts
 * psql with the credential in its environment (never on its command line).
 */
export const run: CliVerb = async (args, io) => {
  const { values, positionals } = parseVerbArgs('grant postgres', args, {
    target: { type: 'string' },
    database: { type: 'string' },
    table: { type: 'string', multiple: true },
    column: { type: 'string', multiple: true },
    privilege: { type: 'string', multiple: true },
    format: { type: 'string' },
    exec: { type: 'string' },
    ttl: { type: 'string' },
    reason: { type: 'string' },
    claim: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
  }, true);
  const target = values['target'] as string | undefined;
  const database = values['database'] as string | undefined;
  const tables = (values['table'] as string[] | undefined) ?? [];
  const claim = values['claim'] as string | undefined;
  if (!claim) {
    if (!target) throw new InvalidRequest('--target is required (the postgres target, e.g. dev-db)');
    if (!database) throw new InvalidRequest('--database is required');
    if (tables.length === 0) throw new InvalidRequest('at least one --table schema.table is required');
  }
  const columns: Record<string, string[]> = {};
  for (const spec of (values['column'] as string[] | undefined) ?? []) {
    const match = /^(.+)=(.+)$/.exec(spec);
    if (!match) throw new InvalidRequest(`--column expects schema.table=col1,col2, got ${JSON.stringify(spec)}`);
    columns[match[1] as string] = (match[2] as string).split(',').map((c) => c.trim()).filter(Boolean);
  }
  const format = ((values['format'] as string | undefined) ?? 'uri') as PostgresCredentialFormat | 'github';
  if (!['uri', 'env', 'pgpass', 'json', 'github'].includes(format)) throw new InvalidRequest('--format expects uri, env, pgpass, json or github');
  const exec = values['exec'] as string | undefined;

  const { url, token } = await connectToBroker(values, io, 'issue');
  const privileges = values['privilege'] as string[] | undefined;
  const grant = claim
    ? await claimApprovedGrant<Record<string, unknown>>(url, token, claim)
    : await requestGrant<Record<string, unknown>>(url, token, {
      kind: 'postgres',
      target,
      scope: { database, tables, ...(Object.keys(columns).length ? { columns } : {}), ...(privileges ? { privileges: privileges.map((p) => p.toUpperCase()) } : {}) },
      ...(values['ttl'] ? { ttl: values['ttl'] } : {}),
      ...(values['reason'] ? { reason: values['reason'] } : {}),
    });
  reportWarnings(io, grant);
  if (!grant.credential) return reportPending(io, grant, `latchkey grant postgres --claim ${grant.id}`);
  const credential = grant.credential;
  // Which grant this is (to revoke or look it up), said beside the login wherever it cannot spoil it.
  const summary = `latchkey: grant ${grant.id}, login ${String(credential['user'])} until ${grant.expiresAt}`;
  if (exec) {
    io.stderr.write(`${summary}\n`);
    return runWithCredential(exec, positionals, { ...process.env, ...psqlEnvironment(credential as never) });
  }
  if (format === 'github') {
    // Inside GitHub Actions: mask, then hand the login to later steps as PG* variables and outputs.
    const env = psqlEnvironment(credential as never);
    const uri = String(credential['uri']);
    await publishToGitHub(io, {
      secrets: [String(credential['password']), uri],
      env,
      outputs: { 'postgres-grant-id': grant.id, 'postgres-url': uri, 'postgres-user': String(credential['user']), 'postgres-expires-at': grant.expiresAt },
    });
    io.stdout.write(`${summary} (PG* variables set for later steps)\n`);
    return 0;
  }
  // The JSON carries the id itself; a URI, exports or a .pgpass line get it on stderr.
  if (format !== 'json') io.stderr.write(`${summary}\n`);
  io.stdout.write(formatPostgresCredential(credential as never, format, grant.id));
  return 0;
};

function runWithCredential(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit', env });
    child.on('error', (err) => reject(new InvalidRequest(`cannot run ${command}: ${err.message}`)));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
