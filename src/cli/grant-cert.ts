import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidRequest } from '../errors.js';
import { connectToBroker } from './client.js';
import { claimApprovedGrant, reportPending, reportWarnings, requestGrant } from './grant-request.js';
import { publishToGitHub } from './github-actions.js';
import { parseVerbArgs, type CliVerb } from './io.js';

interface CertificateCredential {
  certificate: string;
  chain?: string[];
  trustBundle: string;
  privateKey?: string;
  pkcs12?: string;
  pkcs12Password?: string;
  serial: string;
  spiffeId?: string;
  notAfter: string;
}

/**
 * `latchkey grant cert --target T (--csr FILE | --generate) --out DIR`:
 * writes tls.crt (leaf + chain), tls.key (0600, only with --generate) and ca.crt.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('grant cert', args, {
    target: { type: 'string' },
    csr: { type: 'string' },
    generate: { type: 'boolean' },
    'key-type': { type: 'string' },
    pkcs12: { type: 'boolean' },
    out: { type: 'string' },
    ttl: { type: 'string' },
    reason: { type: 'string' },
    format: { type: 'string' },
    claim: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
  });
  const target = values['target'] as string | undefined;
  const claim = values['claim'] as string | undefined;
  if (!target && !claim) throw new InvalidRequest('--target is required (the certificate target, e.g. dev-mesh)');
  const csrPath = values['csr'] as string | undefined;
  const generate = values['generate'] === true;
  if (claim && generate) throw new InvalidRequest('--claim collects an approved grant: its key type was chosen when it was requested; drop --generate');
  if (!claim && Boolean(csrPath) === generate) throw new InvalidRequest('pass exactly one of --csr FILE or --generate');
  const format = (values['format'] as string | undefined) ?? 'files';
  if (!['files', 'json', 'github'].includes(format)) throw new InvalidRequest('--format expects files, json or github');
  const out = values['out'] as string | undefined;
  if (format !== 'json' && !out) throw new InvalidRequest('--out DIR is required (or --format json)');

  let scope: Record<string, unknown> = {};
  if (claim && !csrPath) {
    // the scope was decided when the grant was requested; a CSR grant needs its CSR again (below)
  } else if (csrPath) {
    let csr: string;
    try {
      csr = readFileSync(resolve(io.cwd, csrPath), 'utf8');
    } catch (err) {
      throw new InvalidRequest(`cannot read --csr ${csrPath}: ${(err as Error).message}`);
    }
    // Checked here, before the token is spent on a request the broker would refuse.
    if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csr)) {
      throw new InvalidRequest(`--csr ${csrPath} holds no PEM certificate request: expected a "-----BEGIN CERTIFICATE REQUEST-----" block, as \`openssl req -new\` writes`);
    }
    scope = { csr };
  } else {
    scope = { generate: true, ...(values['key-type'] ? { keyType: values['key-type'] } : {}), ...(values['pkcs12'] ? { pkcs12: true } : {}) };
  }
  const { url, token } = await connectToBroker(values, io, 'issue');
  const grant = claim
    ? await claimApprovedGrant<CertificateCredential>(url, token, claim, scope)
    : await requestGrant<CertificateCredential>(url, token, { kind: 'certificate', target, scope, ...(values['ttl'] ? { ttl: values['ttl'] } : {}), ...(values['reason'] ? { reason: values['reason'] } : {}) });
  reportWarnings(io, grant);
  if (!grant.credential) return reportPending(io, grant, `latchkey grant cert --claim ${grant.id} --out DIR`);
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify(grant, null, 2)}\n`);
    return 0;
  }
  const dir = resolve(io.cwd, out as string);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cred = grant.credential as CertificateCredential;
  writeFileSync(join(dir, 'tls.crt'), [cred.certificate, ...(cred.chain ?? [])].join(''));
  writeFileSync(join(dir, 'ca.crt'), cred.trustBundle);
  if (cred.privateKey) {
    writeFileSync(join(dir, 'tls.key'), cred.privateKey, { mode: 0o600 });
    chmodSync(join(dir, 'tls.key'), 0o600);
  }
  if (cred.pkcs12) writeFileSync(join(dir, 'tls.p12'), Buffer.from(cred.pkcs12, 'base64'), { mode: 0o600 });
  if (format === 'github') {
    // The key stays in the file (0600); its lines are masked in case a later step prints it.
    await publishToGitHub(io, {
      secrets: cred.privateKey ? [cred.privateKey] : [],
      outputs: { 'certificate-grant-id': grant.id, 'certificate-dir': dir, 'certificate-serial': cred.serial, 'certificate-expires-at': grant.expiresAt, ...(cred.spiffeId ? { 'certificate-spiffe-id': cred.spiffeId } : {}) },
    });
  }
  io.stdout.write(
    `grant ${grant.id}\n  identity  ${cred.spiffeId ?? '(none)'}\n  serial    ${cred.serial}\n  expires   ${grant.expiresAt}\n  wrote     ${join(dir, 'tls.crt')}${cred.privateKey ? `, ${join(dir, 'tls.key')}` : ''}, ${join(dir, 'ca.crt')}${cred.pkcs12 ? `, ${join(dir, 'tls.p12')} (password: ${cred.pkcs12Password ?? 'see JSON'})` : ''}\n`,
  );
  return 0;
};
