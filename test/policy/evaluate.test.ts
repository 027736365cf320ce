import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.js';
import type { GrantRequest, PolicySubject } from '../../src/policy/types.js';
import { configWith, githubClaims, safeGitHubWhen, scopeChecker } from './fixtures.js';

const NOW = new Date('2025-01-01T00:00:00Z');

function gh(overrides: Record<string, unknown> = {}): PolicySubject {
  return { issuerName: 'github', claims: githubClaims(overrides) };
}

function request(target: string, ttlSeconds?: number): GrantRequest {
  return { kind: 'tables', target, scope: { tables: ['orders'] }, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) };
}

const policy = compilePolicy(
  configWith({
    rules: [
      {
        name: 'deploy-prod',
        issuer: 'github',
        when: safeGitHubWhen(),
        allow: [{ kind: 'tables', target: 'prod-db', max_ttl: '10m', tables: ['orders'] }],
      },
      {
        name: 'staging',
        issuer: 'github',
        when: { ...safeGitHubWhen(), ref: { glob: 'refs/heads/**' } },
        allow: [
          { kind: 'tables', target: 'staging-db', tables: ['orders'] },
          { kind: 'tables', target: 'analytics', tables: ['customers'] },
          { kind: 'tables', target: 'analytics', tables: ['orders', 'customers'] },
        ],
      },
      {
        name: 'analysts',
        issuer: 'sso',
        when: { groups: { contains: 'analysts' }, amr: { contains: 'hwk' } },
        allow: [{ kind: 'tables', target: 'analytics', tables: ['orders'], require_approval: true }],
      },
    ],
  }),
);

describe('policy evaluation', () => {
  it('allows by the first rule that passes every check and records the rules before it', () => {
    const decision = policy.evaluate(gh({ ref: 'refs/heads/feature' }), request('staging-db'), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.allowed).toBe(true);
    expect(decision.rule?.name).toBe('staging');
    expect(decision.allow?.target).toBe('staging-db');
    expect(decision.evaluations).toMatchObject([
      {
        rule: 'deploy-prod',
        matched: false,
        failure: expect.objectContaining({ field: 'ref', expected: 'refs/heads/main', actual: 'refs/heads/feature' }),
      },
      { rule: 'staging', matched: true },
    ]);
    expect(decision.policyHash).toBe(policy.hash);
  });

  it('stops at the first rule that matches', () => {
    const decision = policy.evaluate(gh(), request('prod-db'), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.rule?.name).toBe('deploy-prod');
    expect(decision.evaluations.map((e) => e.rule)).toEqual(['deploy-prod']);
  });

  it('denies with every rule of the caller’s issuer and the first failing condition of each', () => {
    const decision = policy.evaluate(gh({ repository_id: '999' }), request('prod-db'), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.allowed).toBe(false);
    expect(decision.ttlSeconds).toBe(0);
    expect(decision.rule).toBeUndefined();
    expect(decision.evaluations).toMatchObject([
      {
        rule: 'deploy-prod',
        matched: false,
        failure: {
          condition: 'when.repository_id',
          field: 'repository_id',
          expected: 1234,
          actual: '999',
          message: 'claim repository_id was 999, expected 1234',
        },
      },
      { rule: 'staging', matched: false, failure: expect.objectContaining({ field: 'repository_id', actual: '999' }) },
    ]);
  });

  it('does not consider rules of other issuers', () => {
    const decision = policy.evaluate(
      { issuerName: 'sso', claims: { sub: 'ann', groups: ['analysts'], amr: ['pwd'] } },
      request('analytics'),
      scopeChecker({ tables: ['orders'] }),
      NOW,
    );
    expect(decision.evaluations.map((e) => e.rule)).toEqual(['analysts']);
    expect(decision.evaluations[0]?.failure?.message).toBe('claim amr was [pwd], expected a list containing hwk');
  });

  it('names what a rule allows when the request asks for another target', () => {
    const decision = policy.evaluate(gh(), request('analytics'), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.evaluations[0]).toMatchObject({
      rule: 'deploy-prod',
      matched: false,
      failure: {
        condition: 'allow',
        field: 'target',
        expected: [{ kind: 'tables', target: 'prod-db' }],
        actual: { kind: 'tables', target: 'analytics' },
        message: 'the rule allows tables on prod-db, not tables on analytics',
      },
    });
  });

  it('reports the provider’s scope failure when no allowance of the rule fits the scope', () => {
    const decision = policy.evaluate(gh(), request('prod-db'), scopeChecker({ tables: ['salaries'] }), NOW);
    expect(decision.allowed).toBe(false);
    expect(decision.evaluations[0]?.failure).toMatchObject({ condition: 'allow.tables', actual: ['salaries'] });
  });

  it('tries each allowance for the target until one fits the scope', () => {
    const decision = policy.evaluate(gh(), request('analytics'), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.allowed).toBe(true);
    expect(decision.allow?.settings).toEqual({ tables: ['orders', 'customers'] });
  });

  it.each([
    ['no ttl requested gets the allowance’s max', undefined, 600],
    ['a shorter ttl is kept', 120, 120],
    ['a ttl equal to the max is kept', 600, 600],
    ['a longer ttl is capped to the max', 3600, 600],
  ])('%s', (_what, ttl, granted) => {
    expect(policy.evaluate(gh(), request('prod-db', ttl), scopeChecker({ tables: ['orders'] }), NOW).ttlSeconds).toBe(granted);
  });

  it('caps rules without max_ttl at server.max_ttl', () => {
    const decision = policy.evaluate(gh({ ref: 'refs/heads/x' }), request('staging-db', 7200), scopeChecker({ tables: ['orders'] }), NOW);
    expect(decision.ttlSeconds).toBe(900);
  });

  it('is pure: the same inputs give the same decision', () => {
    const a = policy.evaluate(gh({ ref: 'refs/heads/x' }), request('prod-db'), scopeChecker(), NOW);
    const b = policy.evaluate(gh({ ref: 'refs/heads/x' }), request('prod-db'), scopeChecker(), NOW);
    expect(b).toEqual(a);
  });
});

describe('roles', () => {
  const withRoles = compilePolicy(
    configWith({
      roles: {
        admin: [{ issuer: 'sso', when: { groups: { contains: 'admins' } } }],
        auditor: [
          { issuer: 'sso', when: { groups: { contains: 'auditors' } } },
          { issuer: 'github', when: { repository_id: 1234, repository: 'acme/audit-bot' } },
        ],
        approver: [{ issuer: 'sso', when: { groups: { contains: 'leads' }, amr: { contains: 'hwk' } } }],
      },
    }),
  );

  it.each<[string, PolicySubject, string[]]>([
    ['an SSO admin is admin', { issuerName: 'sso', claims: { groups: ['admins'] } }, ['admin']],
    ['an SSO user in two groups holds both roles', { issuerName: 'sso', claims: { groups: ['auditors', 'admins'] } }, ['admin', 'auditor']],
    ['every condition of a match must hold', { issuerName: 'sso', claims: { groups: ['leads'], amr: ['pwd'] } }, []],
    ['a GitHub repository can hold a role', { issuerName: 'github', claims: githubClaims({ repository: 'acme/audit-bot' }) }, ['auditor']],
    ['the same claims from another issuer hold nothing', { issuerName: 'github', claims: { groups: ['admins'] } }, []],
  ])('%s', (_what, subject, roles) => {
    expect([...withRoles.rolesOf(subject)].sort()).toEqual(roles);
  });
});

describe('policy hash', () => {
  const rules = [{ name: 'r', issuer: 'sso', when: { groups: { contains: 'a' } }, allow: [{ kind: 'tables', target: 'analytics' }] }];

  it('is the same for the same policy, whatever the key order', () => {
    const a = compilePolicy(configWith({ rules }));
    const b = compilePolicy(configWith({ rules: [{ allow: [{ target: 'analytics', kind: 'tables' }], when: { groups: { contains: 'a' } }, issuer: 'sso', name: 'r' }] }));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
  });

  it('changes when a condition changes', () => {
    const a = compilePolicy(configWith({ rules }));
    const b = compilePolicy(configWith({ rules: [{ ...rules[0], when: { groups: { contains: 'b' } } }] }));
    expect(b.hash).not.toBe(a.hash);
  });
});
