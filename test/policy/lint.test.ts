import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { configWith, safeGitHubWhen } from './fixtures.js';

type When = Record<string, unknown>;

function githubRule(when: When, overrides: Record<string, unknown> = {}) {
  return { name: 'deploy', issuer: 'github', when, allow: [{ kind: 'tables', target: 'staging-db' }], ...overrides };
}

function without(...claims: string[]): When {
  const when = safeGitHubWhen();
  for (const c of claims) delete when[c];
  return when;
}

function codes(rules: unknown[]): string[] {
  return lintPolicy(configWith({ rules })).map((f) => `${f.severity}:${f.code}`);
}

describe('policy lint', () => {
  it('finds nothing wrong with a GitHub rule that pins everything', () => {
    expect(codes([githubRule(safeGitHubWhen())])).toEqual([]);
    expect(codes([githubRule(safeGitHubWhen(), { name: 'deploy-prod', allow: [{ kind: 'tables', target: 'prod-db' }] })])).toEqual([]);
  });

  it.each<[string, When, string[]]>([
    ['no repository or owner condition at all is an error', without('repository', 'repository_id', 'repository_owner', 'repository_owner_id'), ['error:github-no-repository']],
    ['an owner-only rule is an error', without('repository', 'repository_id'), ['error:github-no-repository']],
    [
      'a repository glob * is an error',
      { ...without('repository_id'), repository: { glob: '*' } },
      ['error:github-no-repository'],
    ],
    [
      'a wildcard owner is an error',
      { ...without('repository_id'), repository: { glob: '*/app' } },
      ['error:github-no-repository'],
    ],
    ['repository_id by not_one_of pins nothing', { ...without('repository'), repository_id: { not_one_of: [1] } }, ['error:github-no-repository']],
    ['repository_id alone pins the repository', without('repository'), []],
    ['repository alone pins it, but by a mutable name', without('repository_id', 'repository_owner_id'), ['warning:github-mutable-names']],
    ['repository plus the owner id is enough', without('repository_id'), []],
    ['a whole-owner wildcard is a warning', { ...without('repository_id'), repository: { glob: 'acme/*' } }, ['warning:github-owner-wildcard']],
    ['a name-prefix wildcard is a warning', { ...without('repository_id'), repository: { glob: 'acme/app-*' } }, ['warning:github-owner-wildcard']],
    ['a wildcard is harmless next to a pinned repository_id', { ...safeGitHubWhen(), repository: { glob: 'acme/*' } }, []],
    [
      'an exact sub pins the repository it names, but by a mutable name',
      { ...without('repository', 'repository_id', 'repository_owner', 'repository_owner_id'), sub: 'repo:acme/app:ref:refs/heads/main' },
      ['warning:github-mutable-names'],
    ],
    [
      'an exact sub in the immutable format pins the repository and owner ids',
      { ...without('repository', 'repository_id', 'repository_owner', 'repository_owner_id'), sub: { one_of: ['repo:acme@65/app@74:ref:refs/heads/main', 'repo:acme@65/app@74:environment:prod'] } },
      [],
    ],
    [
      'a sub that names no repository pins nothing',
      { ...without('repository', 'repository_id', 'repository_owner', 'repository_owner_id'), sub: 'deploy-bot' },
      ['error:github-no-repository'],
    ],
    ['no event_name condition is a warning', without('event_name'), ['warning:github-event-unpinned']],
    ['event_name by not_one_of is not pinned', { ...safeGitHubWhen(), event_name: { not_one_of: ['pull_request_target', 'workflow_run'] } }, ['warning:github-event-unpinned']],
    ['allowing pull_request_target is a warning', { ...safeGitHubWhen(), event_name: { one_of: ['push', 'pull_request_target'] } }, ['warning:github-event-risky']],
    ['allowing workflow_run by glob is a warning', { ...safeGitHubWhen(), event_name: { glob: 'workflow_*' } }, ['warning:github-event-risky']],
    ['no runner_environment condition is a warning', without('runner_environment'), ['warning:github-runner-unpinned']],
    ['runner_environment self-hosted is a warning', { ...safeGitHubWhen(), runner_environment: 'self-hosted' }, ['warning:github-runner-unpinned']],
    ['runner_environment by not_one_of is not pinned', { ...safeGitHubWhen(), runner_environment: { not_one_of: ['self-hosted'] } }, ['warning:github-runner-unpinned']],
  ])('%s', (_what, when, expected) => {
    expect(codes([githubRule(when)])).toEqual(expected);
  });

  it.each<[string, Record<string, unknown>, When, string[]]>([
    ['a production target without ref or environment', { allow: [{ kind: 'tables', target: 'prod-db' }] }, without('ref'), ['warning:github-production-unpinned']],
    ['a production rule name without ref or environment', { name: 'ship-to-prod' }, without('ref'), ['warning:github-production-unpinned']],
    ['a ref glob any branch fits', { name: 'prod' }, { ...safeGitHubWhen(), ref: { glob: 'refs/heads/*' } }, ['warning:github-production-unpinned']],
    ['a ref glob for release tags pins it', { name: 'prod' }, { ...safeGitHubWhen(), ref: { glob: 'refs/tags/v*' } }, []],
    ['an environment pins it', { name: 'prod' }, { ...without('ref'), environment: 'production' }, []],
    ['an exact sub with an environment pins it', { name: 'prod' }, { ...without('ref'), sub: 'repo:acme/app:environment:production' }, []],
    ['an exact immutable-format sub with a ref pins it', { name: 'prod' }, { ...without('ref'), sub: 'repo:acme@65/app@74:ref:refs/tags/v1' }, []],
    ['an exact sub of a pull request pins neither', { name: 'prod' }, { ...without('ref'), sub: 'repo:acme/app:pull_request' }, ['warning:github-production-unpinned']],
    ['a non-production target needs neither', {}, without('ref'), []],
    ['a target marked production: true, whatever its name', { allow: [{ kind: 'tables', target: 'warehouse' }] }, without('ref'), ['warning:github-production-unpinned']],
    ['no target marked production: false, whatever its or the rule\'s name', { name: 'prod-tests', allow: [{ kind: 'tables', target: 'prod-replica-for-tests' }] }, without('ref'), []],
  ])('flags %s', (_what, overrides, when, expected) => {
    expect(codes([githubRule(when, overrides)])).toEqual(expected);
  });

  it('says why a target counts as production', () => {
    const [finding] = lintPolicy(configWith({ rules: [githubRule(without('ref'), { allow: [{ kind: 'tables', target: 'warehouse' }] })] }));
    expect(finding?.message).toBe('target warehouse is marked production but no ref or environment condition pins it: any branch of the repository can get it');
  });

  it('warns when a rule matches only a glob on sub, whatever the issuer', () => {
    expect(codes([{ name: 'r', issuer: 'sso', when: { sub: { glob: 'svc-*' } }, allow: [{ kind: 'tables', target: 'analytics' }] }])).toEqual([
      'warning:sub-glob-only',
    ]);
    expect(codes([githubRule({ sub: { glob: 'repo:acme/*:*' } })])).toContain('warning:sub-glob-only');
  });

  it('warns when a rule of another issuer has no conditions', () => {
    expect(codes([{ name: 'r', issuer: 'sso', allow: [{ kind: 'tables', target: 'analytics' }] }])).toEqual(['warning:rule-matches-any-token']);
  });

  it('warns on a condition on a claim GitHub tokens do not carry, and suggests the claim it likely meant', () => {
    const messages = (when: When) => lintPolicy(configWith({ rules: [githubRule(when)] })).filter((f) => f.code === 'github-unknown-claim').map((f) => f.message);
    expect(messages({ ...without('ref'), reff: 'refs/heads/main' })).toEqual([
      'GitHub Actions tokens carry no claim reff (did you mean ref?): a condition on it fails for every token, or under not_one_of tests nothing',
    ]);
    expect(messages({ ...safeGitHubWhen(), env: 'prod' })[0]).toContain('no claim env (did you mean environment?)');
    expect(messages({ ...safeGitHubWhen(), repositroy_id: '74' })[0]).toContain('(did you mean repository_id?)');
    expect(messages({ ...safeGitHubWhen(), team: 'payments' })).toEqual([
      'GitHub Actions tokens carry no claim team: a condition on it fails for every token, or under not_one_of tests nothing',
    ]);
    expect(messages(safeGitHubWhen())).toEqual([]);
  });

  it('warns on a misspelt claim in a GitHub role too', () => {
    const findings = lintPolicy(configWith({ roles: { auditor: [{ issuer: 'github', when: { repository_id: '74', workfow: 'audit' } }] } }));
    expect(findings).toEqual([
      expect.objectContaining({ severity: 'warning', code: 'github-unknown-claim', path: 'roles.auditor[0]', message: expect.stringContaining('role auditor: GitHub Actions tokens carry no claim workfow (did you mean workflow?)') }),
    ]);
  });

  it('treats an issuer at GitHub’s URL as GitHub even without the preset', () => {
    const config = configWith({ rules: [githubRule({}, { issuer: 'sso' })] });
    const atGitHub = { ...config, issuers: config.issuers.map((i) => (i.name === 'sso' ? { ...i, issuer: 'https://token.actions.githubusercontent.com' } : i)) };
    expect(lintPolicy(atGitHub).map((f) => f.code)).toContain('github-no-repository');
  });

  it('refuses a GitHub role that pins no repository, and warns on a role anyone of an issuer holds', () => {
    const findings = lintPolicy(
      configWith({
        roles: {
          admin: [{ issuer: 'github', when: { repository_owner: 'acme' } }],
          auditor: [{ issuer: 'sso', when: {} }],
        },
      }),
    );
    expect(findings).toEqual([
      expect.objectContaining({ severity: 'error', code: 'github-no-repository', path: 'roles.admin[0]', rule: 'admin' }),
      expect.objectContaining({ severity: 'warning', code: 'role-matches-any-token', path: 'roles.auditor[0]', rule: 'auditor' }),
    ]);
  });

  it('names the path and rule of each finding', () => {
    const findings = lintPolicy(configWith({ rules: [githubRule(safeGitHubWhen(), { name: 'fine' }), githubRule(without('event_name'))] }));
    expect(findings).toEqual([
      {
        severity: 'warning',
        code: 'github-event-unpinned',
        path: 'rules[1]',
        rule: 'deploy',
        message: expect.stringMatching(/event_name is not pinned/),
      },
    ]);
  });
});

describe('loading a policy', () => {
  it('refuses a policy with a lint error, naming the file, rule and message', () => {
    const config = configWith({ rules: [githubRule(safeGitHubWhen(), { name: 'fine' }), githubRule({ repository_owner: 'acme' })] });
    expect(() => compilePolicy(config)).toThrow(ConfigError);
    expect(() => compilePolicy(config)).toThrow(/test\.yaml: rules\[1\] \(deploy\): no repository_id or repository condition/);
  });

  it('loads a policy with warnings and keeps them for the start-up log', () => {
    const policy = compilePolicy(configWith({ rules: [githubRule(without('runner_environment'))] }));
    expect(policy.warnings.map((f) => f.code)).toEqual(['github-runner-unpinned']);
  });
});
