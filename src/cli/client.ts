import { InvalidRequest, LatchkeyError } from '../errors.js';
import type { CliIO } from './io.js';
import type { TokenPurpose } from './session-store.js';

/** An error the broker answered with (problem+json), shown to the user as it came. */
export class BrokerRefused extends LatchkeyError {
  readonly code: string;
  readonly status: number;
  constructor(status: number, code: string, message: string, detail: Record<string, unknown>) {
    super(message, detail);
    this.status = status;
    this.code = code;
  }
  override get expose(): boolean {
    return true;
  }
}

/** Where the broker is: --url, LATCHKEY_URL, or the dev default. */
export function brokerUrl(flag: string | undefined, io: CliIO): string {
  return (flag ?? io.env['LATCHKEY_URL'] ?? 'http://127.0.0.1:8420').replace(/\/+$/, '');
}

/** What `resolveToken` needs to know besides the --token flag. */
export interface ResolveTokenOptions {
  /**
   * `issue` for calls that burn the token's jti (POST /v1/grants, /claim): a
   * stored sign-in then hands out an ID token no call has used. `read` for
   * everything else: the stored ID token may be reused.
   */
  readonly purpose: TokenPurpose;
  /** The broker's URL: names the stored sign-in (`latchkey login`). */
  readonly broker: string;
  /** Audience of the GitHub Actions token (default LATCHKEY_AUDIENCE or `latchkey`). */
  readonly audience?: string | undefined;
}

/**
 * Finds the caller's OIDC token: --token, LATCHKEY_TOKEN, inside GitHub
 * Actions the workflow's own token (requested with the given audience), and
 * last the sign-in `latchkey login` stored for this broker.
 */
export async function resolveToken(flag: string | undefined, io: CliIO, options: ResolveTokenOptions): Promise<string> {
  const token = flag ?? io.env['LATCHKEY_TOKEN'];
  if (token) return token.trim();
  if (io.env['ACTIONS_ID_TOKEN_REQUEST_URL'] && io.env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    const { fetchGitHubActionsToken } = await import('./github-actions.js');
    return fetchGitHubActionsToken(io.env, options.audience ?? io.env['LATCHKEY_AUDIENCE'] ?? 'latchkey');
  }
  const { sessionToken } = await import('./session-store.js');
  const stored = await sessionToken(options.broker, io.env, options.purpose);
  if (stored) return stored;
  throw new InvalidRequest('no token: run latchkey login (SSO in the browser), pass --token, set LATCHKEY_TOKEN, or run inside GitHub Actions with permissions: id-token: write');
}

/**
 * The broker URL and caller token a verb uses, from its parsed `--url`,
 * `--token` and `--audience` flags (each optional) and the environment.
 */
export async function connectToBroker(
  values: Readonly<Record<string, unknown>>,
  io: CliIO,
  purpose: ResolveTokenOptions['purpose'],
): Promise<{ url: string; token: string }> {
  const flag = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const url = brokerUrl(flag('url'), io);
  const audience = flag('audience');
  const token = await resolveToken(flag('token'), io, { purpose, broker: url, ...(audience === undefined ? {} : { audience }) });
  return { url, token };
}

/** Calls the broker's JSON API; a problem+json answer becomes BrokerRefused. */
export async function callBroker<T = Record<string, unknown>>(
  url: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch (err) {
    throw new BrokerRefused(503, 'broker_unreachable', `cannot reach the broker at ${url}: ${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}`, {});
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    const problem = body as { code?: string; detail?: string; title?: string };
    throw new BrokerRefused(response.status, problem.code ?? `http_${response.status}`, problem.detail ?? problem.title ?? response.statusText, body as Record<string, unknown>);
  }
  return body as T;
}
