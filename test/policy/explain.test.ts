import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.js';
import type { GrantRequest, PolicySubject } from '../../src/policy/types.js';
import { configWith, githubClaims, safeGitHubWhen, scopeChecker } from './fixtures.js';

const NOW = new Date('2025-01-01T00:00:00Z');
const prodRequest: GrantRequest = { kind: 'tables', target: 'prod-db', scope: { tables: ['orders'] } };

const { repository_owner: _o, repository_owner_id: _oid, ...withoutOwner } = safeGitHubWhen();

const policy = compilePolicy(
  configWith({
    rules: [
      { name: 'deploy-prod', issuer: 'github', when: safeGitHubWhen(), allow: [{ kind: 'tables', target: 'prod-db', tables: ['orders'] }] },
      // Pins the repository but no owner condition: nobody but an admin may see it.
      { name: 'no-owner', issuer: 'github', when: withoutOwner, allow: [{ kind: 'tables', target: 'prod-db', tables: ['orders'] }] },
      {
        name: 'other-org',
        issuer: 'github',
        when: { ...safeGitHubWhen(), repository: 'globex/app', repository_id: 777, repository_owner: 'globex', repository_owner_id: 9 },
        allow: [{ kind: 'tables', target: 'prod-db', tables: ['orders'] }],
      },
      { name: 'analysts', issuer: 'sso', when: { groups: { contains: 'analysts' } }, allow: [{ kind: 'tables', target: 'analytics', tables: ['orders'] }] },
    ],
  }),
);

function explain(subject: PolicySubject, isAdmin = false, req: GrantRequest = prodRequest) {
  return policy.explainTo(policy.evaluate(subject, req, scopeChecker({ tables: ['orders'] }), NOW), subject, isAdmin);
}

describe('explanations shown to the caller', () => {
  it('shows a token from another GitHub owner no rule detail, only how many rules were hidden', () => {
    const stranger: PolicySubject = {
      issuerName: 'github',
      claims: githubClaims({ repository: 'mallory/app', repository_id: '5', repository_owner: 'mallory', repository_owner_id: '66' }),
    };
    const explanation = explain(stranger);
    expect(explanation).toEqual({ allowed: false, evaluations: [], hiddenRules: 3, summary: 'no rule matched' });
    expect(JSON.stringify(explanation)).not.toMatch(/acme|globex|1234/);
  });

  it('hides a rule from a token that has the owner name but not the owner id (a re-registered name)', () => {
    const impostor: PolicySubject = { issuerName: 'github', claims: githubClaims({ repository_owner_id: '4242', ref: 'refs/heads/x' }) };
    expect(explain(impostor).evaluations).toEqual([]);
  });

  it('shows the rule’s own owner the failing condition, with expected and actual values', () => {
    const feature: PolicySubject = { issuerName: 'github', claims: githubClaims({ ref: 'refs/heads/feature' }) };
    const explanation = explain(feature);
    expect(explanation.allowed).toBe(false);
    expect(explanation.evaluations).toMatchObject([
      {
        rule: 'deploy-prod',
        matched: false,
        failure: expect.objectContaining({ field: 'ref', expected: 'refs/heads/main', actual: 'refs/heads/feature' }),
      },
    ]);
    expect(explanation.hiddenRules).toBe(2);
    expect(explanation.summary).toBe('no rule matched; rule deploy-prod: claim ref was refs/heads/feature, expected refs/heads/main');
  });

  it('shows an admin every rule considered', () => {
    const feature: PolicySubject = { issuerName: 'github', claims: githubClaims({ ref: 'refs/heads/feature' }) };
    const explanation = explain(feature, true);
    expect(explanation.evaluations.map((e) => e.rule)).toEqual(['deploy-prod', 'no-owner', 'other-org']);
    expect(explanation.hiddenRules).toBe(0);
  });

  it('names the rule that allowed the request, with the lifetime', () => {
    const explanation = explain({ issuerName: 'github', claims: githubClaims() });
    expect(explanation).toMatchObject({ allowed: true, rule: 'deploy-prod', ttlSeconds: 900, hiddenRules: 0 });
    expect(explanation.summary).toBe('rule deploy-prod allows tables on prod-db for 900s');
  });

  it('shows an SSO user every rule of its own issuer', () => {
    const explanation = explain({ issuerName: 'sso', claims: { sub: 'ann', groups: ['sales'] } }, false, {
      kind: 'tables',
      target: 'analytics',
      scope: { tables: ['orders'] },
    });
    expect(explanation.evaluations.map((e) => e.rule)).toEqual(['analysts']);
    expect(explanation.hiddenRules).toBe(0);
    expect(explanation.summary).toBe('no rule matched; rule analysts: claim groups was [sales], expected a list containing analysts');
  });
});

describe('the one-sentence summary of a denial', () => {
  const ssoPolicy = compilePolicy(
    configWith({
      rules: [
        { name: 'certs', issuer: 'sso', when: { groups: { contains: 'eng' } }, allow: [{ kind: 'tables', target: 'staging-db', tables: ['logs'] }] },
        { name: 'wrong-team', issuer: 'sso', when: { groups: { contains: 'finance' } }, allow: [{ kind: 'tables', target: 'analytics', tables: ['orders'] }] },
        { name: 'analysts', issuer: 'sso', when: { groups: { contains: 'eng' } }, allow: [{ kind: 'tables', target: 'analytics', tables: ['orders'] }] },
      ],
    }),
  );
  const engineer: PolicySubject = { issuerName: 'sso', claims: { sub: 'ada', groups: ['eng'] } };
  const summaryFor = (tables: string[]) => {
    const request: GrantRequest = { kind: 'tables', target: 'analytics', scope: { tables } };
    return ssoPolicy.explainTo(ssoPolicy.evaluate(engineer, request, scopeChecker({ tables }), NOW), engineer, false).summary;
  };

  it('names the rule for the requested target whose conditions held but whose scope did not fit', () => {
    expect(summaryFor(['customers'])).toBe('no rule matched; rule analysts: tables customers are not allowed (allowed: orders)');
  });

  it('prefers a rule for the requested target whose conditions failed over a rule for another target', () => {
    const request: GrantRequest = { kind: 'tables', target: 'analytics', scope: { tables: ['orders'] } };
    const outsider: PolicySubject = { issuerName: 'sso', claims: { sub: 'bob', groups: ['sales'] } };
    const summary = ssoPolicy.explainTo(ssoPolicy.evaluate(outsider, request, scopeChecker({ tables: ['orders'] }), NOW), outsider, false).summary;
    expect(summary).toMatch(/^no rule matched; rule wrong-team: /);
  });
});
