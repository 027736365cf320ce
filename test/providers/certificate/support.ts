import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { ManualClock } from '../../../src/clock.js';
import { certificateKind } from '../../../src/providers/certificate/index.js';
import type { CertificateAllow, CertificateScope, CertificateTarget } from '../../../src/providers/certificate/index.js';
import type { IssuedCredential, ProviderDeps, TargetProvider } from '../../../src/providers/provider.js';

const execFileAsync = promisify(execFile);

/** Whether the openssl command is on PATH (CI installs Debian's `openssl`). */
export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
// .ci/run installs openssl: there, a missing one is a broken CI, not a reason to skip.
if (!hasOpenssl && process.env['LATCHKEY_CI']) throw new Error('LATCHKEY_CI is set but openssl is not on PATH: .ci/run should have installed it');

/** Runs openssl; resolves stdout+stderr and the exit code (never throws on a non-zero exit). */
export async function openssl(args: string[], options: { cwd?: string } = {}): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('openssl', args, { cwd: options.cwd, maxBuffer: 4 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

export async function scratchDir(): Promise<{ path: string; file(name: string, text: string): Promise<string>; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'latchkey-cert-'));
  return {
    path,
    async file(name, text) {
      const file = join(path, name);
      await writeFile(file, text);
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

export type TestKeyType = 'rsa-1024' | 'rsa-2048' | 'rsa-3072' | 'ec-p256' | 'ec-p384' | 'secp256k1';

/** A private key (PKCS#8 PEM) made with Node's crypto. */
export function makeKey(type: TestKeyType): string {
  const pair = type.startsWith('rsa-')
    ? generateKeyPairSync('rsa', { modulusLength: Number(type.slice(4)) })
    : generateKeyPairSync('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : type === 'ec-p384' ? 'P-384' : 'secp256k1' });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** A CSR made by `openssl req`, optionally asking for extensions (`-addext`). */
export async function makeCsr(
  dir: { file(name: string, text: string): Promise<string> },
  keyPem: string,
  options: { subject?: string; addext?: string[]; sigopt?: string[] } = {},
): Promise<string> {
  const keyFile = await dir.file(`key-${Math.random().toString(36).slice(2)}.pem`, keyPem);
  const args = ['req', '-new', '-key', keyFile, '-subj', options.subject ?? '/CN=asked-for-by-the-csr'];
  for (const ext of options.addext ?? []) args.push('-addext', ext);
  for (const opt of options.sigopt ?? []) args.push('-sigopt', opt);
  const { code, output } = await openssl(args);
  if (code !== 0) throw new Error(`openssl req failed: ${output}`);
  return output.slice(output.indexOf('-----BEGIN CERTIFICATE REQUEST-----'));
}

export const silentLogger = pino({ level: 'silent' });

export function deps(dataDir: string, devMode: boolean, clock = new ManualClock(new Date())): ProviderDeps {
  return { clock, logger: silentLogger, dataDir, devMode };
}

/** A target as the config loader would hand it over: through the kind's schema. */
export function target(settings: Record<string, unknown>): CertificateTarget {
  return certificateKind.targetSchema.parse(settings);
}

export function allowance(settings: Record<string, unknown>): CertificateAllow {
  return certificateKind.allowSchema.parse(settings);
}

export function scope(settings: Record<string, unknown>): CertificateScope {
  return certificateKind.scopeSchema.parse(settings);
}

export const TEAM_ALLOWANCE = { spiffe_id: 'spiffe://{trust_domain}/team/{team}/{sub}' };

/** Opens a dev-mode target whose CA is generated into `dataDir`. */
export async function openDevTarget(
  dataDir: string,
  caKeyType: 'ec-p256' | 'rsa-2048' = 'ec-p256',
  name = 'mesh',
): Promise<TargetProvider<CertificateAllow, CertificateScope>> {
  return certificateKind.open(name, target({ trust_domain: 'latchkey.test', ca_key_type: caKeyType }), deps(dataDir, true));
}

/** Issues with the fields grants would pass; lifetime 15 minutes from `issuedAt`. */
export function issue(
  provider: TargetProvider<CertificateAllow, CertificateScope>,
  request: { allow?: Record<string, unknown>; scope: Record<string, unknown>; claims?: Record<string, unknown>; issuedAt?: Date; ttlSeconds?: number },
): Promise<IssuedCredential> {
  const issuedAt = request.issuedAt ?? new Date();
  return provider.issue({
    grantId: 'grant-1',
    requestId: 'request-1',
    subject: 'alice',
    issuerName: 'dev',
    claims: request.claims ?? { sub: 'alice', team: 'payments' },
    allow: allowance(request.allow ?? TEAM_ALLOWANCE),
    scope: scope(request.scope),
    issuedAt,
    expiresAt: new Date(issuedAt.getTime() + (request.ttlSeconds ?? 900) * 1000),
  });
}

export interface CertificateCredential {
  certificate: string;
  chain: string[];
  trustBundle: string;
  privateKey?: string;
  pkcs12?: string;
  pkcs12Password?: string;
  serial: string;
  spiffeId: string;
  dnsNames: string[];
  notBefore: string;
  notAfter: string;
}

export const credentialOf = (issued: IssuedCredential): CertificateCredential => issued.credential as unknown as CertificateCredential;

export const x509 = (pem: string): X509Certificate => new X509Certificate(pem);

/** Everything a TLS peer sends until it ends the connection (then the socket is destroyed). */
export async function readUntilEnd(socket: import('node:tls').TLSSocket): Promise<string> {
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  try {
    await once(socket, 'end');
  } finally {
    socket.destroy();
  }
  return received;
}
