import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileCommands } from '../../src/cli/github-actions.js';
import { loadConfigFile } from '../../src/config/load.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { providerKinds } from '../../src/providers/registry.js';
import type { TestBroker } from '../support/broker.js';
import { runProcess } from '../support/cli.js';
import { actionStepEnv, stepFiles } from '../support/github-job.js';
import type { LocalSts, StsCredentials } from '../support/sts-server.js';
import { startGitHubTokenService, startAwsBroker } from '../providers/aws/support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs one step of the action as the runner does: `node <entry>` with INPUT_*, file commands and STATE_*. */
function runStep(entry: string, env: Record<string, string>) {
  return runProcess(process.execPath, [join(ROOT, entry)], { env: { PATH: process.env['PATH'] ?? '', ...env }, cwd: ROOT, timeoutMs: 60_000 });
}

describe('the latchkey GitHub Action', () => {
  let sts: LocalSts;
  let broker: StsCredentials;
  let t: TestBroker;
  let tokens: Awaited<ReturnType<typeof startGitHubTokenService>>;
  let dir: string;

  beforeAll(async () => {
    ({ sts, broker, t } = await startAwsBroker());
    tokens = await startGitHubTokenService((audience) => t.issuer.githubToken({ aud: audience }));
    dir = mkdtempSync(join(tmpdir(), 'latchkey-action-'));
  });
  afterAll(async () => {
    await tokens?.close();
    await t?.close();
    await sts?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function job(name: string): Record<string, string> {
    return actionStepEnv({
      dir,
      files: stepFiles(dir, name),
      tokens,
      broker: { url: t.url, audience: t.issuer.audience },
      inputs: { 'INPUT_AWS-TARGET': 'prod-aws', 'INPUT_AWS-ROLE': 'deploy' },
    });
  }

  it('declares its inputs, outputs and a post step that always runs', () => {
    const action = parseYaml(readFileSync(join(ROOT, 'action.yml'), 'utf8'));
    expect(Object.keys(action.inputs)).toEqual(
      expect.arrayContaining(['broker-url', 'audience', 'aws-target', 'aws-role', 'postgres-target', 'postgres-tables', 'certificate-target', 'certificate-output-dir']),
    );
    expect(Object.keys(action.outputs)).toEqual(expect.arrayContaining(['aws-grant-id', 'aws-access-key-id', 'postgres-grant-id', 'certificate-grant-id']));
    expect(action.runs).toMatchObject({ main: 'action/main.js', post: 'action/post.js', 'post-if': 'always()' });
  });

  it('the main step puts masked AWS credentials in the job, and the post step revokes the grant', async () => {
    const env = job('deploy');
    const main = await runStep('action/main.js', env);
    expect(main.stderr).toBe('');
    expect(main.code).toBe(0);

    const outputs = readFileCommands(readFileSync(env['GITHUB_OUTPUT']!, 'utf8'));
    const jobEnv = readFileCommands(readFileSync(env['GITHUB_ENV']!, 'utf8'));
    const grantId = outputs['aws-grant-id']!;
    expect(grantId).toMatch(/\S/);
    for (const secret of [jobEnv['AWS_ACCESS_KEY_ID']!, jobEnv['AWS_SECRET_ACCESS_KEY']!, jobEnv['AWS_SESSION_TOKEN']!]) {
      expect(main.stdout).toContain(`::add-mask::${secret}\n`);
      // The log shows each secret only inside its mask command.
      expect(main.stdout.split(`::add-mask::${secret}`).join('')).not.toContain(secret);
    }
    expect(sts.issued(jobEnv['AWS_ACCESS_KEY_ID']!)).toBeDefined();

    // The runner hands the saved state to the post step as STATE_<name>.
    const state = readFileCommands(readFileSync(env['GITHUB_STATE']!, 'utf8'));
    expect(state['grant_ids']).toBe(grantId);
    const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
    const post = await runStep('action/post.js', { ...env, ...stateEnv });
    expect(post.stderr).toBe('');
    expect(post.code).toBe(0);
    expect(post.stdout).toContain(`grant ${grantId}: revoked`);

    const grant = await t.call('GET', `/v1/grants/${grantId}`, { token: await t.issuer.githubToken() });
    expect(grant.body.status).toBe('revoked');
  });

  it('a job without id-token permission fails the step with an error annotation that says so', async () => {
    const env = job('noperm');
    delete (env as Record<string, string | undefined>)['ACTIONS_ID_TOKEN_REQUEST_URL'];
    const main = await runStep('action/main.js', env);
    expect(main.code).toBe(1);
    expect(main.stdout).toContain('::error title=latchkey::');
    expect(main.stdout).toContain('id-token: write');
    expect(readFileSync(env['GITHUB_STATE']!, 'utf8')).toBe('');
  });

  it('a denied grant fails the step and leaves nothing for the post step', async () => {
    const env: Record<string, string> = { ...job('denied'), 'INPUT_AWS-ROLE': 'admin' };
    const main = await runStep('action/main.js', env);
    expect(main.code).toBe(1);
    expect(main.stderr).toContain('policy_denied');
    expect(readFileSync(env['GITHUB_ENV']!, 'utf8')).toBe('');
    const post = await runStep('action/post.js', env);
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('no grants to revoke');
  });

  it('the example workflow requests id-token: write and uses only inputs the action declares; the example policy loads and lints clean', () => {
    const action = parseYaml(readFileSync(join(ROOT, 'action.yml'), 'utf8'));
    const workflow = parseYaml(readFileSync(join(ROOT, 'examples/github-workflow.yml'), 'utf8'));
    const job = workflow.jobs.deploy;
    expect(job.permissions['id-token']).toBe('write');
    const step = job.steps.find((s: { id?: string }) => s.id === 'latchkey');
    for (const name of Object.keys(step.with)) expect(Object.keys(action.inputs)).toContain(name);

    const config = loadConfigFile(join(ROOT, 'examples/github-policy.yaml'), providerKinds);
    expect(lintPolicy(config)).toEqual([]);
    const rule = config.rules[0]!;
    expect(Object.keys(rule.when)).toEqual(expect.arrayContaining(['repository_id', 'repository_owner_id', 'ref', 'environment']));
    expect(rule.when['environment']).toBe(job.environment);
    expect(rule.allow.map((a) => `${a.kind}:${a.target}`)).toEqual([`aws:${step.with['aws-target']}`, `postgres:${step.with['postgres-target']}`, `certificate:${step.with['certificate-target']}`]);
  });
});
