import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { z } from 'zod';
import { InvalidRequest, LoginFailed } from '../errors.js';
import { brokerUrl, callBroker } from './client.js';
import { parseVerbArgs, type CliIO, type CliVerb } from './io.js';
import { describeOidcError, discoverIdp, sessionFilePath, sessionFromTokens, writeSession, type SessionIssuer, type StoredSession } from './session-store.js';

/**
 * `latchkey login [--url BROKER] [--issuer NAME] [--no-browser]`: the
 * engineer signs in once through the company's SSO in the browser; later
 * commands use the stored sign-in (see session-store.ts).
 *
 * An OAuth 2.0 native-app login (RFC 8252): authorization code with PKCE
 * S256, `state` and `nonce`, the code received on a one-shot HTTP server on
 * 127.0.0.1. openid-client checks the ID token (signature, iss, aud, exp, nonce).
 */

/** How long the loopback server waits for the browser to come back. */
const LOGIN_TIMEOUT_MS = 5 * 60_000;

const loginConfigSchema = z.object({
  issuers: z.array(
    z.object({
      name: z.string().min(1),
      issuer: z.url(),
      client_id: z.string().min(1),
      scopes: z.array(z.string().min(1)).min(1),
      discovery_url: z.url().optional(),
      redirect_port: z.number().int().min(1).max(65535).optional(),
      allow_insecure_http: z.literal(true).optional(),
    }),
  ),
});
type LoginIssuerAnswer = z.infer<typeof loginConfigSchema>['issuers'][number];

export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('login', args, { url: { type: 'string' }, issuer: { type: 'string' }, 'no-browser': { type: 'boolean' } });
  const broker = brokerUrl(values['url'] as string | undefined, io);
  const chosen = chooseIssuer(await loginIssuersOf(broker), values['issuer'] as string | undefined, broker);
  const issuer: SessionIssuer = {
    name: chosen.name,
    issuer: chosen.issuer,
    client_id: chosen.client_id,
    ...(chosen.discovery_url ? { discovery_url: chosen.discovery_url } : {}),
    ...(chosen.allow_insecure_http ? { allow_insecure_http: true as const } : {}),
  };
  const configuration = await discoverIdp(issuer);
  const { session, who } = await signInThroughBrowser({
    io,
    broker,
    issuer,
    configuration,
    scopes: chosen.scopes,
    redirectPort: chosen.redirect_port,
    openBrowser: values['no-browser'] !== true,
  });
  writeSession(sessionFilePath(broker, io.env), session);

  io.stdout.write(`Signed in to ${broker} as ${who} through ${issuer.name}.\n`);
  io.stdout.write(
    session.refresh_token
      ? `The ID token is good until ${session.expires_at}; latchkey renews it with the IdP after that, and after each credential it issues.\n`
      : `The ID token is good until ${session.expires_at} and for one credential: the IdP gave no refresh token (add "offline_access" to cli_login.scopes if it needs it).\n`,
  );
  return 0;
};

/** The issuers the broker lets engineers sign in through (`GET /v1/login/config`). */
async function loginIssuersOf(broker: string): Promise<LoginIssuerAnswer[]> {
  const answer = loginConfigSchema.safeParse(await callBroker(broker, 'GET', '/v1/login/config'));
  if (!answer.success) throw new LoginFailed(`the broker at ${broker} answered /v1/login/config with something latchkey does not understand`);
  return answer.data.issuers;
}

function chooseIssuer(issuers: LoginIssuerAnswer[], wanted: string | undefined, broker: string): LoginIssuerAnswer {
  const names = issuers.map((i) => i.name).join(', ');
  if (wanted !== undefined) {
    const found = issuers.find((i) => i.name === wanted);
    if (!found) throw new InvalidRequest(issuers.length ? `--issuer ${wanted}: the broker at ${broker} offers sign-in through ${names}` : `the broker at ${broker} offers no browser sign-in (no issuer has cli_login)`);
    return found;
  }
  if (issuers.length === 0) throw new InvalidRequest(`the broker at ${broker} offers no browser sign-in (no issuer has cli_login); ask its operator, or pass --token`);
  if (issuers.length > 1) throw new InvalidRequest(`the broker at ${broker} offers sign-in through ${names}: choose one with --issuer NAME`);
  return issuers[0] as LoginIssuerAnswer;
}

/** A completed sign-in: what to store, and whom it names (email, else sub) for messages. */
interface SignedIn {
  readonly session: StoredSession;
  readonly who: string;
}

interface BrowserSignIn {
  readonly io: CliIO;
  readonly broker: string;
  readonly issuer: SessionIssuer;
  readonly configuration: client.Configuration;
  readonly scopes: readonly string[];
  readonly redirectPort: number | undefined;
  readonly openBrowser: boolean;
}

/**
 * Sends the engineer to the IdP and waits for the one redirect back to
 * `http://127.0.0.1:PORT/callback`. Anything other than the expected answer
 * (wrong state, an error from the IdP, a refused code exchange) ends the login.
 */
async function signInThroughBrowser(sign: BrowserSignIn): Promise<SignedIn> {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const server = createServer();
  await new Promise<void>((ok, bad) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      bad(err.code === 'EADDRINUSE' ? new LoginFailed(`port ${String(sign.redirectPort)} on 127.0.0.1 (cli_login.redirect_port) is taken; close what uses it and try again`) : err),
    );
    server.listen(sign.redirectPort ?? 0, '127.0.0.1', () => ok());
  });
  try {
    const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
    const authorizationUrl = client.buildAuthorizationUrl(sign.configuration, {
      redirect_uri: redirectUri,
      scope: sign.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const opened = sign.openBrowser && (await openInBrowser(authorizationUrl.href));
    sign.io.stderr.write(
      opened
        ? `Opening your browser to sign in through ${sign.issuer.name}. If it does not open, visit:\n\n  ${authorizationUrl.href}\n\n`
        : `To sign in through ${sign.issuer.name}, open this URL in a browser on this computer:\n\n  ${authorizationUrl.href}\n\n`,
    );
    const callback = await waitForCallback(server, redirectUri);
    try {
      const signedIn = await exchangeCode(sign, callback.url, { codeVerifier, state, nonce });
      await answerBrowser(callback.res, 200, 'Signed in to latchkey', `Signed in as ${signedIn.who}. You can close this tab and return to the terminal.`);
      return signedIn;
    } catch (err) {
      await answerBrowser(callback.res, 400, 'Sign-in failed', `${(err as Error).message} You can close this tab.`);
      throw err;
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** The first request to /callback, or LoginFailed after LOGIN_TIMEOUT_MS. Other paths (favicon) get 404. */
function waitForCallback(server: Server, redirectUri: string): Promise<{ url: URL; res: ServerResponse }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new LoginFailed(`no sign-in came back from the browser within ${LOGIN_TIMEOUT_MS / 60_000} minutes; run latchkey login again`));
    }, LOGIN_TIMEOUT_MS);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', redirectUri);
      if (req.method !== 'GET' || url.pathname !== '/callback') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      clearTimeout(timer);
      server.removeAllListeners('request');
      resolve({ url, res });
    });
  });
}

/** Checks the redirect's state, then trades the code (with the PKCE verifier) for tokens; openid-client validates the ID token. */
async function exchangeCode(sign: BrowserSignIn, callbackUrl: URL, checks: { codeVerifier: string; state: string; nonce: string }): Promise<SignedIn> {
  const params = callbackUrl.searchParams;
  // Checked before anything else: a redirect with another state was not started by this login (CSRF, a stale tab).
  if (params.get('state') !== checks.state) {
    throw new LoginFailed('the sign-in that came back does not belong to this login (state does not match); run latchkey login again.');
  }
  const idpError = params.get('error');
  if (idpError) {
    const description = params.get('error_description');
    throw new LoginFailed(`the identity provider refused the sign-in: ${idpError}${description ? `: ${description}` : ''}.`);
  }
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  try {
    tokens = await client.authorizationCodeGrant(sign.configuration, callbackUrl, {
      pkceCodeVerifier: checks.codeVerifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
  } catch (err) {
    throw new LoginFailed(`the identity provider did not complete the sign-in: ${describeOidcError(err)}.`, {}, { cause: err });
  }
  const claims = tokens.claims();
  const who = typeof claims?.['email'] === 'string' ? claims['email'] : String(claims?.sub);
  return { session: sessionFromTokens(sign.broker, sign.issuer, tokens, false), who };
}

/** Opens the URL with the desktop's opener; false when there is none (a server, a container). */
function openInBrowser(url: string): Promise<boolean> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? undefined : 'xdg-open';
  if (!opener) return Promise.resolve(false);
  return new Promise((resolve) => {
    // The URL is one argv entry, never a shell string.
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

/** The small page the browser shows once the login is over. */
function answerBrowser(res: ServerResponse, status: number, title: string, message: string): Promise<void> {
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;margin:3em"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
  return new Promise((resolve) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'", connection: 'close' });
    res.end(page, () => resolve());
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
