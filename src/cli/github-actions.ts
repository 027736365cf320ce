import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { InvalidRequest, TokenMissing } from '../errors.js';
import type { CliIO } from './io.js';

/**
 * What the `latchkey` command does inside a GitHub Actions job: fetch the
 * workflow's own OIDC token, mask secrets in the job log, and hand values to
 * later steps through `$GITHUB_ENV` and `$GITHUB_OUTPUT`. Every `--format
 * github` (aws, postgres, certificate) goes through `publishToGitHub`, which
 * masks before it writes.
 */

type Env = Readonly<Record<string, string | undefined>>;

// The runner answers in well under a second; a stuck request should fail the step, not hang it.
const TOKEN_REQUEST_TIMEOUT_MS = 15_000;

/** True inside a GitHub Actions job. */
export function isGitHubActions(env: Env): boolean {
  return env['GITHUB_ACTIONS'] === 'true';
}

/**
 * Requests the job's OIDC token for `audience` from the runner, as
 * `@actions/core`'s getIDToken does: GET `$ACTIONS_ID_TOKEN_REQUEST_URL` with
 * `audience` added to its query and `Authorization: bearer
 * $ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the answer is `{"value": "<jwt>"}`.
 * Throws InvalidRequest when the job lacks `permissions: id-token: write`,
 * TokenMissing when the runner does not give a token.
 */
export async function fetchGitHubActionsToken(env: Env, audience: string): Promise<string> {
  const requestUrl = env['ACTIONS_ID_TOKEN_REQUEST_URL'];
  const requestToken = env['ACTIONS_ID_TOKEN_REQUEST_TOKEN'];
  if (!requestUrl || !requestToken) {
    throw new InvalidRequest(
      'no GitHub Actions OIDC token available: ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are unset; give the job "permissions: id-token: write"',
    );
  }
  const url = new URL(requestUrl);
  url.searchParams.set('audience', audience);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `bearer ${requestToken}`, accept: 'application/json; api-version=2.0' },
      signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new TokenMissing(`cannot reach the GitHub Actions token service at ${url.origin}: ${(err as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) {
    // The runner's error body is short JSON; it never contains the request token.
    throw new TokenMissing(`the GitHub Actions token service answered ${response.status} for audience "${audience}": ${text.slice(0, 200)}`);
  }
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new TokenMissing('the GitHub Actions token service answered without a token ("value")');
  }
  return value;
}

// Workflow command data escaping, as the runner (and @actions/core) define it.
function escapeCommandData(value: string): string {
  return value.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * Tells the runner to hide `value` in the job log (`::add-mask::`). Each line
 * of a multi-line secret is masked on its own, because the log is matched
 * line by line.
 */
export function maskSecret(value: string, io: Pick<CliIO, 'stdout'>): void {
  for (const line of value.split(/\r?\n/)) {
    if (line.trim().length > 0) io.stdout.write(`::add-mask::${escapeCommandData(line)}\n`);
  }
}

// NAME<<DELIMITER / value / DELIMITER: GitHub's documented multi-line form, safe for any value.
function fileCommandEntry(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) throw new TypeError(`not a GitHub env/output name: ${JSON.stringify(name)}`);
  let delimiter: string;
  do delimiter = `ghadelimiter_${randomUUID()}`;
  while (value.includes(delimiter));
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

async function appendFileCommand(env: Env, variable: 'GITHUB_ENV' | 'GITHUB_OUTPUT' | 'GITHUB_STATE', entries: Readonly<Record<string, string>>): Promise<void> {
  const file = env[variable];
  if (!file) throw new InvalidRequest(`--format github needs $${variable}; it is set inside GitHub Actions jobs`);
  const text = Object.entries(entries)
    .map(([name, value]) => fileCommandEntry(name, value))
    .join('');
  if (text) await appendFile(file, text, { encoding: 'utf8' });
}

/** Appends variables for later steps of the job to `$GITHUB_ENV` (multi-line safe). */
export async function appendGitHubEnv(env: Env, entries: Readonly<Record<string, string>>): Promise<void> {
  await appendFileCommand(env, 'GITHUB_ENV', entries);
}

/** Appends step outputs to `$GITHUB_OUTPUT` (multi-line safe). */
export async function appendGitHubOutput(env: Env, entries: Readonly<Record<string, string>>): Promise<void> {
  await appendFileCommand(env, 'GITHUB_OUTPUT', entries);
}

/** Saves values for this action's post step (`$GITHUB_STATE`; the post step reads `STATE_<name>`). */
export async function appendGitHubState(env: Env, entries: Readonly<Record<string, string>>): Promise<void> {
  await appendFileCommand(env, 'GITHUB_STATE', entries);
}

/**
 * Reads a `$GITHUB_ENV`/`$GITHUB_OUTPUT`/`$GITHUB_STATE` file as the runner
 * does: `NAME=value` lines and `NAME<<DELIMITER` blocks. Later entries win.
 */
export function readFileCommands(text: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const end = lines.indexOf(delimiter, i + 1);
      if (end < 0) throw new TypeError(`file command ${name}: delimiter ${delimiter} never closes`);
      entries[name] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new TypeError(`not a file command line: ${JSON.stringify(line.slice(0, 40))}`);
    entries[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return entries;
}

/** What a `--format github` hands to the job. */
export interface GitHubDelivery {
  /** Values that must never show in the log: masked before anything is written. */
  readonly secrets: readonly string[];
  /** Environment variables for later steps. */
  readonly env?: Readonly<Record<string, string>>;
  /** Step outputs (`steps.<id>.outputs.<name>`). */
  readonly outputs?: Readonly<Record<string, string>>;
}

/**
 * Masks every secret, then writes `$GITHUB_ENV` and `$GITHUB_OUTPUT`. The
 * order is the point: a value reaches a file (and so possibly a later log
 * line) only after the runner was told to hide it.
 */
export async function publishToGitHub(io: CliIO, delivery: GitHubDelivery): Promise<void> {
  for (const secret of delivery.secrets) maskSecret(secret, io);
  if (delivery.env) await appendGitHubEnv(io.env, delivery.env);
  if (delivery.outputs) await appendGitHubOutput(io.env, delivery.outputs);
}
