import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { policyLintVerb } from '../../src/cli/policy-lint.js';
import { kinds } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-policy-lint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(env: Record<string, string> = {}): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env,
    cwd: dir,
    out: () => out,
    err: () => err,
  };
}

const header = `
issuers:
  - name: github
    preset: github
    audience: latchkey
targets:
  prod-db:
    kind: tables
`;

function policyFile(name: string, when: string): string {
  writeFileSync(
    join(dir, name),
    `${header}rules:
  - name: deploy-prod
    issuer: github
    when:
${when}
    allow:
      - kind: tables
        target: prod-db
        tables: [orders]
`,
  );
  return name;
}

const lint = policyLintVerb(kinds);

describe('latchkey policy lint', () => {
  it('exits 1 and prints the error when a GitHub rule pins no repository', async () => {
    const io = capture();
    const file = policyFile('open.yaml', '      repository_owner: acme');
    expect(await lint([file], io)).toBe(1);
    expect(io.out()).toMatch(/^error rules\[0\] \(deploy-prod\): no repository_id or repository condition.* \[github-no-repository\]$/m);
    expect(io.out()).toMatch(/^warning rules\[0\] \(deploy-prod\): .* \[github-production-unpinned\]$/m);
    expect(io.err()).toMatch(/open\.yaml: 1 error, \d+ warnings/);
  });

  it('exits 0 with warnings only', async () => {
    const io = capture();
    const file = policyFile(
      'warned.yaml',
      ['repository: acme/app', 'repository_id: 1234', 'repository_owner_id: 42', 'ref: refs/heads/main', 'event_name: push'].map((l) => `      ${l}`).join('\n'),
    );
    expect(await lint([file], io)).toBe(0);
    expect(io.out()).toBe(
      'warning rules[0] (deploy-prod): runner_environment is not pinned to github-hosted: jobs on self-hosted runners (whose machines may be shared or persistent) can get this [github-runner-unpinned]\n',
    );
  });

  it('exits 0 and prints nothing on stdout for a clean policy, read from LATCHKEY_CONFIG', async () => {
    const file = policyFile(
      'clean.yaml',
      ['repository: acme/app', 'repository_id: 1234', 'repository_owner_id: 42', 'ref: refs/heads/main', 'event_name: push', 'runner_environment: github-hosted']
        .map((l) => `      ${l}`)
        .join('\n'),
    );
    const io = capture({ LATCHKEY_CONFIG: file });
    expect(await lint([], io)).toBe(0);
    expect(io.out()).toBe('');
    expect(io.err()).toBe('clean.yaml: 0 errors, 0 warnings\n');
  });

  it('refuses an invalid file with the config error', async () => {
    writeFileSync(join(dir, 'broken.yaml'), `${header}rules:\n  - name: x\n    issuer: nobody\n    allow: [{kind: tables, target: prod-db}]\n`);
    await expect(lint(['broken.yaml'], capture())).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/rules\[0\]\.issuer: unknown issuer "nobody"/) });
  });

  it('is reachable as `latchkey policy lint`, exiting 2 without a file and 1 on a missing one', async () => {
    const noFile = capture();
    expect(await main(['policy', 'lint'], noFile)).toBe(2);
    expect(noFile.err()).toMatch(/expected a configuration file/);
    const missing = capture();
    expect(await main(['policy', 'lint', 'does-not-exist.yaml'], missing)).toBe(1);
    expect(missing.err()).toMatch(/cannot read configuration file/);
  });
});
