import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.js';
import { freePort } from '../support/embedded-cluster.js';
import { useProductionFiles } from '../support/production-files.js';

// `latchkey serve` is production: it must refuse what only dev mode may do.
describe('latchkey serve', () => {
  const fixture = useProductionFiles('latchkey-serve-');
  const { production, writeConfig } = fixture;

  it('refuses to start without a database', async () => {
    const r = await runCli(['serve', '--config', writeConfig('a.yaml', production())], { env: { DATABASE_URL: '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DATABASE_URL');
  });

  it('says why the database is unreachable, without its password', async () => {
    const port = await freePort(); // nothing listens there
    const r = await runCli(['serve', '--config', writeConfig('g.yaml', production())], { env: { DATABASE_URL: `postgres://latchkey:hunter2-secret@127.0.0.1:${port}/latchkey` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the state database is unreachable (store_unavailable)');
    expect(r.stderr).toContain(`because: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(r.stderr + r.stdout).not.toContain('hunter2-secret');
  });

  it('says the database refused the login when the URL names a role it does not know', async () => {
    const url = new URL(fixture.databaseUrl);
    url.username = 'no_such_role';
    url.password = 'hunter2-secret';
    const r = await runCli(['serve', '--config', writeConfig('h.yaml', production())], { env: { DATABASE_URL: url.href } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the state database refused the login (user, password or database name) (store_unavailable)');
    expect(r.stderr).toContain('because: password authentication failed for user "no_such_role"');
    expect(r.stderr + r.stdout).not.toContain('hunter2-secret');
  });

  it('says when its port is taken and how to choose another, and stops', async () => {
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await runCli(['serve', '--config', writeConfig('i.yaml', production({ server: { port } }))], { env: { DATABASE_URL: fixture.databaseUrl } });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use (is another latchkey running?); choose another port with --port or server.port (listen_failed)`);
    } finally {
      taken.close();
    }
  });

  it('refuses the development issuer', async () => {
    const config = production({ issuers: [{ name: 'dev', preset: 'dev', audience: 'latchkey' }], rules: [] });
    const r = await runCli(['serve', '--config', writeConfig('b.yaml', config)], { env: { DATABASE_URL: fixture.databaseUrl } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/dev/);
  });

  it('refuses to start without the audit signing key', async () => {
    const r = await runCli(['serve', '--config', writeConfig('c.yaml', production({ keys: {} }))], { env: { DATABASE_URL: fixture.databaseUrl } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('audit_signing_key_file');
  });

  it('refuses to listen on every interface without a public URL', async () => {
    const r = await runCli(['serve', '--config', writeConfig('f.yaml', production({ server: { host: '0.0.0.0', port: 0 } }))], { env: { DATABASE_URL: fixture.databaseUrl } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('server.public_url');
  });

  it('refuses an invalid file, naming the file and each dotted path', async () => {
    const broken = production({ server: { port: 'eighty' }, rules: [{ name: 'x', issuer: 'nobody', allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/u' }] }] });
    const path = writeConfig('d.yaml', broken);
    const r = await runCli(['serve', '--config', path], { env: { DATABASE_URL: fixture.databaseUrl } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toContain('server.port');
  });

  it('serves with real keys and no development issuer, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const path = writeConfig('e.yaml', production({ server: { port } }));
    const broker = await startCli(['serve', '--config', path], /latchkey serving/, { env: { DATABASE_URL: fixture.databaseUrl } });
    try {
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/dev/oidc/.well-known/openid-configuration`)).status).toBe(404);
      expect(await (await fetch(`${url}/v1/ca?target=mesh`)).text()).toContain('BEGIN CERTIFICATE');
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  });
});
