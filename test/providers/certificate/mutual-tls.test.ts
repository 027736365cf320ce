import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createNetServer } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateAllow, CertificateScope } from '../../../src/providers/certificate/index.js';
import type { TargetProvider } from '../../../src/providers/provider.js';
import { credentialOf, hasOpenssl, issue, makeCsr, makeKey, openDevTarget, readUntilEnd, scratchDir, type CertificateCredential } from './support.js';

/**
 * Real TLS peers accept latchkey's certificates: a Node `tls` server that
 * requires client certificates from the trust bundle and pins the peer's
 * SPIFFE ID, and openssl's s_server/s_client.
 */

let dir: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  dir = await scratchDir();
});
afterAll(() => dir.remove());

const SERVER_ALLOWANCE = { spiffe_id: 'spiffe://{trust_domain}/service/{service}', dns_names: ['localhost'], usages: ['server_auth'] };

/** A client certificate from a CSR for `claims`, with the key that made the CSR. */
async function clientCredential(
  provider: TargetProvider<CertificateAllow, CertificateScope>,
  keyType: 'ec-p256' | 'rsa-2048',
  claims: Record<string, unknown>,
): Promise<{ cert: CertificateCredential; key: string }> {
  const key = makeKey(keyType);
  const cert = credentialOf(await issue(provider, { scope: { csr: await makeCsr(dir, key) }, claims }));
  return { cert, key };
}

async function serverCredential(provider: TargetProvider<CertificateAllow, CertificateScope>): Promise<CertificateCredential> {
  return credentialOf(await issue(provider, { allow: SERVER_ALLOWANCE, scope: { generate: true }, claims: { service: 'orders' } }));
}

function spiffeIdOf(cert: tls.PeerCertificate): string | undefined {
  return cert.subjectaltname
    ?.split(', ')
    .find((name) => name.startsWith('URI:spiffe://'))
    ?.slice('URI:'.length);
}

/**
 * Starts a Node TLS server that demands a client certificate chaining to
 * `trustBundle` and whose SPIFFE ID is `pinnedClient`; resolves what it saw.
 */
async function pinningServer(server: CertificateCredential, pinnedClient: string) {
  const seen: string[] = [];
  const refusals: string[] = [];
  const listener = tls.createServer(
    {
      cert: server.certificate,
      key: server.privateKey as string,
      ca: server.trustBundle,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      const id = spiffeIdOf(socket.getPeerCertificate());
      seen.push(id ?? '(none)');
      // The mesh's authorization: a verified chain is not enough, the identity must be the pinned one.
      socket.end(id === pinnedClient ? 'welcome\n' : 'wrong identity\n');
    },
  );
  listener.on('tlsClientError', (err) => refusals.push(err.message));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  return { port, seen, refusals, close: () => new Promise<void>((resolve) => listener.close(() => resolve())) };
}

/** Connects with a client certificate, verifies the server against the bundle and pins its SPIFFE ID. */
async function connect(port: number, client: { cert: CertificateCredential; key: string }, pinnedServer: string): Promise<string> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    cert: client.cert.certificate,
    key: client.key,
    ca: client.cert.trustBundle,
    checkServerIdentity: (_host, cert) => (spiffeIdOf(cert) === pinnedServer ? undefined : new Error(`server is ${spiffeIdOf(cert)}, not ${pinnedServer}`)),
  });
  return readUntilEnd(socket);
}

describe.each([
  ['an ECDSA CA', 'ec-p256'],
  ['an RSA CA', 'rsa-2048'],
] as const)('mutual TLS with certificates from %s', (_label, caKeyType) => {
  let provider: TargetProvider<CertificateAllow, CertificateScope>;
  beforeAll(async () => {
    provider = await openDevTarget(`${dir.path}/data-${caKeyType}`, caKeyType);
  });

  it.each(['ec-p256', 'rsa-2048'] as const)('a Node TLS server pinning a SPIFFE ID accepts the client holding a %s certificate for it', async (keyType) => {
    const server = await pinningServer(await serverCredential(provider), 'spiffe://latchkey.test/team/payments/alice');
    try {
      const client = await clientCredential(provider, keyType, { sub: 'alice', team: 'payments' });
      expect(await connect(server.port, client, 'spiffe://latchkey.test/service/orders')).toBe('welcome\n');
      expect(server.seen).toEqual(['spiffe://latchkey.test/team/payments/alice']);
    } finally {
      await server.close();
    }
  });

  it('a certificate for another identity completes the handshake but is refused where the peer pins a SPIFFE ID', async () => {
    const server = await pinningServer(await serverCredential(provider), 'spiffe://latchkey.test/team/payments/alice');
    try {
      const mallory = await clientCredential(provider, 'ec-p256', { sub: 'mallory', team: 'payments' });
      expect(await connect(server.port, mallory, 'spiffe://latchkey.test/service/orders')).toBe('wrong identity\n');
      expect(server.seen).toEqual(['spiffe://latchkey.test/team/payments/mallory']);
    } finally {
      await server.close();
    }
  });

  it('a client pinning another server identity refuses the server', async () => {
    const server = await pinningServer(await serverCredential(provider), 'spiffe://latchkey.test/team/payments/alice');
    try {
      const client = await clientCredential(provider, 'ec-p256', { sub: 'alice', team: 'payments' });
      await expect(connect(server.port, client, 'spiffe://latchkey.test/service/billing')).rejects.toThrow(/not spiffe:\/\/latchkey.test\/service\/billing/);
    } finally {
      await server.close();
    }
  });

  it('a client certificate from another CA is refused in the handshake', async () => {
    const other = await openDevTarget(`${dir.path}/other-${caKeyType}`, caKeyType);
    const server = await pinningServer(await serverCredential(provider), 'spiffe://latchkey.test/team/payments/alice');
    try {
      const stranger = await clientCredential(other, 'ec-p256', { sub: 'alice', team: 'payments' });
      // The stranger trusts our server (same bundle), so only the server's check of the client can fail.
      const trustingUs = { ...stranger, cert: { ...stranger.cert, trustBundle: (await serverCredential(provider)).trustBundle } };
      // Under TLS 1.3 the client learns of the refusal only as an alert after its side finished: either way, no welcome.
      const received = await connect(server.port, trustingUs, 'spiffe://latchkey.test/service/orders').catch(() => '');
      expect(received).toBe('');
      expect(server.seen).toEqual([]);
      expect(server.refusals).not.toEqual([]);
    } finally {
      await server.close();
    }
  });

  describe.skipIf(!hasOpenssl)('openssl s_server and s_client', () => {
    it.each(['ec-p256', 'rsa-2048'] as const)('complete a mutual-TLS handshake with %s client and server certificates', async (keyType) => {
      const server = credentialOf(
        await issue(provider, { allow: SERVER_ALLOWANCE, scope: { generate: true, keyType }, claims: { service: 'orders' } }),
      );
      const client = await clientCredential(provider, keyType, { sub: 'alice', team: 'payments' });
      const files = {
        bundle: await dir.file(`os-bundle-${caKeyType}.pem`, server.trustBundle),
        serverCert: await dir.file(`os-server-${caKeyType}-${keyType}.pem`, server.certificate),
        serverKey: await dir.file(`os-server-${caKeyType}-${keyType}.key`, server.privateKey as string),
        clientCert: await dir.file(`os-client-${caKeyType}-${keyType}.pem`, client.cert.certificate),
        clientKey: await dir.file(`os-client-${caKeyType}-${keyType}.key`, client.key),
      };
      const port = await freePort();
      const sServer = spawn('openssl', [
        's_server', '-accept', `127.0.0.1:${port}`, '-naccept', '1',
        '-cert', files.serverCert, '-key', files.serverKey,
        '-CAfile', files.bundle, '-Verify', '2', '-verify_return_error', '-purpose', 'sslclient',
      ]);
      try {
        await waitForOutput(sServer, /ACCEPT/);
        const handshake = await opensslClient([
          's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
          '-cert', files.clientCert, '-key', files.clientKey,
          '-CAfile', files.bundle, '-verify_return_error', '-verify_hostname', 'localhost', '-brief',
        ]);
        expect(handshake.output).toMatch(/Verification: OK/);
        expect(handshake.code).toBe(0);
      } finally {
        sServer.kill();
      }
    });

    it('s_server refuses a client whose certificate chains to another CA', async () => {
      const other = await openDevTarget(`${dir.path}/os-other-${caKeyType}`, caKeyType);
      const server = await serverCredential(provider);
      const stranger = await clientCredential(other, 'ec-p256', { sub: 'alice', team: 'payments' });
      const files = {
        bundle: await dir.file(`osr-bundle-${caKeyType}.pem`, server.trustBundle),
        serverCert: await dir.file(`osr-server-${caKeyType}.pem`, server.certificate),
        serverKey: await dir.file(`osr-server-${caKeyType}.key`, server.privateKey as string),
        clientCert: await dir.file(`osr-client-${caKeyType}.pem`, stranger.cert.certificate),
        clientKey: await dir.file(`osr-client-${caKeyType}.key`, stranger.key),
      };
      const port = await freePort();
      const sServer = spawn('openssl', [
        's_server', '-accept', `127.0.0.1:${port}`, '-naccept', '1',
        '-cert', files.serverCert, '-key', files.serverKey, '-CAfile', files.bundle, '-Verify', '2', '-verify_return_error',
      ]);
      try {
        await waitForOutput(sServer, /ACCEPT/);
        const handshake = await opensslClient([
          's_client', '-connect', `127.0.0.1:${port}`, '-cert', files.clientCert, '-key', files.clientKey,
          '-CAfile', files.bundle, '-verify_return_error', '-brief',
          // TLS 1.2: the server judges the client certificate inside the handshake, so the client always sees the alert.
          '-tls1_2',
        ]);
        expect(handshake.output).toMatch(/alert/i);
        expect(handshake.code).not.toBe(0);
      } finally {
        sServer.kill();
      }
    });
  });
});

async function freePort(): Promise<number> {
  const probe = createNetServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<void> {
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`openssl exited (${code}) before ${pattern}: ${output}`)));
  });
}

/** s_client with an empty stdin: it handshakes, prints the verification result and exits. */
async function opensslClient(args: string[]): Promise<{ code: number; output: string }> {
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end();
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? 1, output };
}
