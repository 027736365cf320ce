import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CliIO } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { sessionFilePath } from '../../src/cli/session-store.js';
import { validateConfig } from '../../src/config/load.js';
import { providerKinds } from '../../src/providers/registry.js';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';

/**
 * `latchkey login` against a real broker and a local IdP that auto-approves
 * sign-ins. The test plays the browser: it follows the printed URL to the IdP
 * and the IdP's redirect to the CLI's loopback callback.
 */
describe('latchkey login: SSO in the browser, then commands without pasting tokens', () => {
  let idp: TestOidcIssuer;
  let github: TestOidcIssuer;
  let t: TestBroker;
  let home: string;

  beforeAll(async () => {
    // An ID token's aud is the client id, so the issuer's audience is the CLI's client id.
    idp = await TestOidcIssuer.start({ interactive: true, audience: 'latchkey-cli' });
    github = await TestOidcIssuer.start();
    t = await startTestBroker({
      issuer: idp,
      configure: () => ({
        issuers: [
          { name: 'corp', issuer: idp.url, audience: 'latchkey-cli', allow_insecure_http: true, cli_login: { client_id: 'latchkey-cli' } },
          githubIssuer(github),
        ],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          { name: 'engineers', issuer: 'corp', when: { groups: { contains: 'engineering' } }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/user/{sub}' }] },
        ],
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
    await idp?.close();
    await github?.close();
  });
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'latchkey-login-'));
    idp.nextSignIn({});
    return () => rmSync(home, { recursive: true, force: true });
  });

  function cliIO() {
    const out = { stdout: '', stderr: '' };
    const io: CliIO = {
      stdout: { write: (text: string) => (out.stdout += text) },
      stderr: { write: (text: string) => (out.stderr += text) },
      env: { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), LATCHKEY_URL: t.url },
      cwd: home,
    };
    return { io, out };
  }

  async function latchkey(...args: string[]) {
    const { io, out } = cliIO();
    const code = await main(args, io);
    return { code, ...out };
  }

  /** What a browser does: GET the URL, and follow the IdP's redirect to the loopback callback. */
  interface Browser {
    /** Changes the authorization URL before it reaches the IdP. */
    authorize?: (url: URL) => void;
    /** Changes the IdP's redirect before it reaches the CLI. */
    callback?: (url: URL) => void;
  }

  async function login(browser: Browser = {}, ...args: string[]) {
    const { io, out } = cliIO();
    const running = main(['login', '--no-browser', ...args], io);
    const printed = await vi.waitFor(() => {
      const match = /^ {2}(http:\/\/\S+)$/m.exec(out.stderr);
      if (!match) throw new Error('no URL printed yet');
      return new URL(match[1] as string);
    });
    browser.authorize?.(printed);
    const atIdp = await fetch(printed, { redirect: 'manual' });
    expect(atIdp.status).toBe(302);
    const back = new URL(atIdp.headers.get('location') as string);
    browser.callback?.(back);
    const page = await fetch(back);
    const code = await running;
    return { code, ...out, authorization: printed, page: { status: page.status, text: await page.text() } };
  }

  const sessionFile = () => sessionFilePath(t.url, { HOME: home, XDG_CONFIG_HOME: join(home, 'config') });
  const storedSession = () => JSON.parse(readFileSync(sessionFile(), 'utf8')) as Record<string, unknown>;

  async function usedTokenIds(): Promise<string[]> {
    const db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    try {
      const rows = await db.query<{ jti: string }>('SELECT jti FROM used_token_ids WHERE issuer = $1', [idp.url]);
      return rows.rows.map((r) => r.jti);
    } finally {
      await db.end();
    }
  }

  it('lists only the issuers with cli_login at /v1/login/config, without a token', async () => {
    const answer = await t.call('GET', '/v1/login/config');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      issuers: [{ name: 'corp', issuer: idp.url, client_id: 'latchkey-cli', scopes: ['openid', 'email', 'profile', 'groups'], allow_insecure_http: true }],
    });
  });

  it('signs in through the browser with PKCE S256, state and nonce, and says who signed in and until when', async () => {
    idp.nextSignIn({ email: 'grace@example.com' });
    const keyFetchesBefore = idp.requests.jwks;
    const r = await login();
    expect(r.stderr).toContain('open this URL in a browser');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Signed in to ${t.url} as grace@example.com through corp`);
    expect(r.stdout).toMatch(/good until \d{4}-\d\d-\d\dT/);
    expect(r.page.status).toBe(200);
    expect(r.page.text).toContain('Signed in as grace@example.com. You can close this tab');
    // The CLI checked the ID token's signature against the IdP's published keys.
    expect(idp.requests.jwks).toBeGreaterThan(keyFetchesBefore);

    const asked = r.authorization.searchParams;
    expect(r.authorization.origin + r.authorization.pathname).toBe(`${idp.url}/authorize`);
    expect(asked.get('client_id')).toBe('latchkey-cli');
    expect(asked.get('response_type')).toBe('code');
    expect(asked.get('code_challenge_method')).toBe('S256');
    expect(asked.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(asked.get('state')).toBeTruthy();
    expect(asked.get('nonce')).toBeTruthy();
    expect(asked.get('scope')).toBe('openid email profile groups');
    expect(asked.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
  });

  it('keeps the sign-in in a 0600 file in a 0700 folder, with the ID and refresh tokens and no access token', async () => {
    expect((await login()).code).toBe(0);
    const file = sessionFile();
    expect(file).toBe(join(home, 'config', 'latchkey', `session-${new URL(t.url).host.replace(':', '_')}.json`));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, 'config', 'latchkey')).mode & 0o777).toBe(0o700);
    const session = storedSession();
    expect(Object.keys(session).sort()).toEqual(['broker', 'expires_at', 'id_token', 'issuer', 'refresh_token', 'used', 'version']);
    expect(session['issuer']).toEqual({ name: 'corp', issuer: idp.url, client_id: 'latchkey-cli', allow_insecure_http: true });
    expect(session['used']).toBe(false);
    expect(readFileSync(file, 'utf8')).not.toContain('access_token');
  });

  it('issues two certificates in a row without a second sign-in: the second call renewed the single-use ID token', async () => {
    expect((await login()).code).toBe(0);
    const jtisBefore = idp.interactiveRequests.idTokenJtis.length;
    const refreshesBefore = idp.interactiveRequests.refreshes;

    const first = await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).credential.spiffeId).toBe('spiffe://example.org/user/00u8f2k1m3ZpQ4xY5d7');
    expect(idp.interactiveRequests.refreshes).toBe(refreshesBefore);

    const second = await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json');
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(idp.interactiveRequests.refreshes).toBe(refreshesBefore + 1);

    const issued = idp.interactiveRequests.idTokenJtis.slice(jtisBefore - 1);
    expect(issued).toHaveLength(2);
    const burnt = await usedTokenIds();
    expect(burnt).toEqual(expect.arrayContaining(issued));
    expect(new Set(issued).size).toBe(2);

    // A read reuses the spent ID token: no refresh.
    const status = await latchkey('status', JSON.parse(second.stdout).id);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(idp.interactiveRequests.refreshes).toBe(refreshesBefore + 1);
  });

  it('renews an ID token that expires within a minute before a read uses it', async () => {
    idp.nextSignIn({ exp: Math.floor(Date.now() / 1000) + 30 });
    expect((await login()).code).toBe(0);
    const refreshesBefore = idp.interactiveRequests.refreshes;
    const r = await latchkey('explain', '--kind', 'certificate', '--target', 'mesh', '--scope', '{"generate":true}', '--json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).allowed).toBe(true);
    expect(idp.interactiveRequests.refreshes).toBe(refreshesBefore + 1);
    expect(storedSession()['used']).toBe(false);
  });

  it('refuses a redirect whose state was tampered with, and stores nothing', async () => {
    const exchangesBefore = idp.interactiveRequests.codeExchanges;
    const r = await login({ callback: (url) => url.searchParams.set('state', 'attacker-chosen') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('state does not match');
    expect(r.stderr).toContain('(login_failed)');
    expect(r.page.status).toBe(400);
    expect(idp.interactiveRequests.codeExchanges).toBe(exchangesBefore);
    expect(existsSync(sessionFile())).toBe(false);
  });

  it('fails when the IdP refuses the PKCE verifier (the code was bound to another challenge), and stores nothing', async () => {
    const otherChallenge = createHash('sha256').update('a verifier the CLI never made, at least 43 characters long').digest('base64url');
    const r = await login({ authorize: (url) => url.searchParams.set('code_challenge', otherChallenge) });
    expect(r.code).toBe(1);
    expect(idp.interactiveRequests.refused).toContain('PKCE verification failed: code_verifier does not match code_challenge');
    expect(r.stderr).toContain('invalid_grant: PKCE verification failed');
    expect(r.page.status).toBe(400);
    expect(existsSync(sessionFile())).toBe(false);
  });

  it('asks to run latchkey login again once the IdP no longer honours the refresh token', async () => {
    expect((await login()).code).toBe(0);
    expect((await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json')).code).toBe(0);
    idp.expireRefreshTokens();
    const r = await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has expired (the identity provider refused to renew it: invalid_grant: refresh token expired); run latchkey login again (login_required)');
  });

  it('asks to run latchkey login again when a refresh brings no new ID token', async () => {
    idp.nextSignIn({}, { idTokenOnRefresh: false });
    expect((await login()).code).toBe(0);
    expect((await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json')).code).toBe(0);
    const r = await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('without a new ID token');
    expect(r.stderr).toContain('run latchkey login again');
  });

  it('logout deletes the stored sign-in and revokes its refresh token at the IdP', async () => {
    expect((await login()).code).toBe(0);
    const refreshToken = storedSession()['refresh_token'] as string;
    const r = await latchkey('logout');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Signed out of ${t.url}. The refresh token was revoked at the identity provider.`);
    expect(existsSync(sessionFile())).toBe(false);
    expect(idp.interactiveRequests.revoked).toContain(refreshToken);

    const after = await latchkey('grant', 'cert', '--target', 'mesh', '--generate', '--format', 'json');
    expect(after.code).toBe(2);
    expect(after.stderr).toContain('no token: run latchkey login');
    expect((await latchkey('logout')).stdout).toBe(`Not signed in to ${t.url}.\n`);
  });
});

describe('issuers[].cli_login in the configuration', () => {
  const base = { name: 'corp', issuer: 'https://sso.example.com', audience: 'latchkey-cli' };
  it.each([
    ['a client id other than the audience', { ...base, cli_login: { client_id: 'other' } }, 'issuers[0].cli_login.client_id: expected the issuer\'s audience "latchkey-cli"'],
    ['scopes without openid', { ...base, cli_login: { client_id: 'latchkey-cli', scopes: ['email'] } }, 'issuers[0].cli_login.scopes: expected "openid"'],
    ['a GitHub preset', { name: 'gh', preset: 'github', audience: 'latchkey-cli', cli_login: { client_id: 'latchkey-cli' } }, 'issuers[0].cli_login: expected no cli_login on a github preset issuer'],
  ])('refuses %s, naming the path', (_what, issuer, message) => {
    expect(() => validateConfig({ issuers: [issuer] }, 'policy.yaml', providerKinds)).toThrow(message);
  });

  it('defaults the scopes to openid, email, profile and groups', () => {
    const config = validateConfig({ issuers: [{ ...base, cli_login: { client_id: 'latchkey-cli' } }] }, 'policy.yaml', providerKinds);
    expect(config.issuers[0]?.cli_login).toEqual({ client_id: 'latchkey-cli', scopes: ['openid', 'email', 'profile', 'groups'] });
  });
});
