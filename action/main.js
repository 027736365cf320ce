// The main step of the latchkey GitHub Action (action.yml): builds the CLI if
// this checkout of the action has no dist/, then runs `latchkey grant ...
// --format github` for each credential the inputs ask for. The CLI fetches the
// job's OIDC token itself, masks every secret, and writes $GITHUB_ENV and
// $GITHUB_OUTPUT; this script only remembers the grant ids for the post step.
// Node built-ins only until the build exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'latchkey.js');

/** An input as the runner passes it: INPUT_<NAME> with the name upper-cased. */
export function input(name, env = process.env) {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/** Builds dist/ once per runner when the action was checked out from source. */
function ensureBuilt() {
  if (existsSync(join(root, 'dist', 'cli', 'main.js'))) return;
  process.stdout.write('::group::latchkey: installing and building the CLI (first use of this action version)\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // Scripts off: the CLI needs none (the embedded PostgreSQL binaries are for `latchkey dev`).
  const steps = [
    [npm, ['ci', '--no-audit', '--no-fund', '--ignore-scripts']],
    [npm, ['run', 'build']],
  ];
  for (const [command, args] of steps) {
    const code = run(command, args, { shell: process.platform === 'win32' });
    if (code !== 0) {
      process.stdout.write('::endgroup::\n');
      throw new Error(`${command} ${args.join(' ')} failed with exit code ${code}`);
    }
  }
  process.stdout.write('::endgroup::\n');
}

function list(value) {
  return value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

/** The `latchkey grant ...` commands the inputs ask for, by kind. */
export function requestedGrants(env = process.env) {
  const grants = [];
  const awsTarget = input('aws-target', env);
  const awsRole = input('aws-role', env);
  if (awsTarget || awsRole) {
    if (!awsTarget || !awsRole) throw new Error('aws-target and aws-role go together');
    grants.push({ kind: 'aws', args: ['grant', 'aws', '--target', awsTarget, '--role', awsRole] });
  }
  const pgTarget = input('postgres-target', env);
  if (pgTarget) {
    const tables = list(input('postgres-tables', env));
    if (tables.length === 0) throw new Error('postgres-target needs postgres-tables');
    const database = input('postgres-database', env);
    grants.push({ kind: 'postgres', args: ['grant', 'postgres', '--target', pgTarget, ...(database ? ['--database', database] : []), ...tables.flatMap((t) => ['--table', t])] });
  }
  const certTarget = input('certificate-target', env);
  if (certTarget) {
    const out = input('certificate-output-dir', env) || join(env.RUNNER_TEMP ?? root, 'latchkey-certificate');
    grants.push({ kind: 'certificate', args: ['grant', 'cert', '--target', certTarget, '--generate', '--out', out] });
  }
  return grants;
}

async function main() {
  const brokerUrl = input('broker-url');
  if (!brokerUrl) throw new Error('input broker-url is required');
  const audience = input('audience') || 'latchkey';
  const grants = requestedGrants();
  if (grants.length === 0) throw new Error('nothing to ask for: set aws-target/aws-role, postgres-target/postgres-tables or certificate-target');
  if (!process.env.ACTIONS_ID_TOKEN_REQUEST_URL) {
    throw new Error('this job cannot request an OIDC token: add "permissions: id-token: write" to the job');
  }
  ensureBuilt();
  const { appendGitHubState, readFileCommands } = await import('../dist/cli/github-actions.js');

  // The audience travels in LATCHKEY_AUDIENCE, which every verb's token lookup reads.
  const env = { ...process.env, LATCHKEY_URL: brokerUrl, LATCHKEY_AUDIENCE: audience };
  delete env.LATCHKEY_TOKEN;
  const grantIds = [];
  let failed;
  for (const grant of grants) {
    const code = run(process.execPath, [bin, ...grant.args, '--url', brokerUrl, '--format', 'github'], { env });
    // The CLI wrote `<kind>-grant-id` to this step's outputs; remember it for the post step even if a later grant fails.
    const outputs = process.env.GITHUB_OUTPUT && existsSync(process.env.GITHUB_OUTPUT) ? readFileCommands(readFileSync(process.env.GITHUB_OUTPUT, 'utf8')) : {};
    const id = outputs[`${grant.kind}-grant-id`];
    if (id && !grantIds.includes(id)) grantIds.push(id);
    if (code !== 0) {
      failed = `latchkey could not get the ${grant.kind} credential (exit ${code}); the reason is above`;
      break;
    }
  }
  if (grantIds.length > 0) await appendGitHubState(process.env, { grant_ids: grantIds.join(' '), broker_url: brokerUrl, audience });
  if (failed) throw new Error(failed);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    process.stdout.write(`::error title=latchkey::${String(err.message).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}\n`);
    process.exitCode = 1;
  });
}
