import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { GITHUB_CLAIMS, parseGitHubSubject } from '../../src/identity/github.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';

describe('parseGitHubSubject', () => {
  it('reads the name format', () => {
    expect(parseGitHubSubject('repo:octo-org/octo-repo:environment:prod')).toEqual({
      format: 'name',
      owner: 'octo-org',
      ownerId: undefined,
      repository: 'octo-org/octo-repo',
      repositoryName: 'octo-repo',
      repositoryId: undefined,
      qualifiers: [{ key: 'environment', value: 'prod' }],
      environment: 'prod',
      ref: undefined,
      refType: undefined,
      pullRequest: false,
    });
  });

  it('reads the immutable format with owner and repository ids', () => {
    expect(parseGitHubSubject('repo:octo-org@65/octo-repo@74:ref:refs/heads/main')).toMatchObject({
      format: 'immutable',
      owner: 'octo-org',
      ownerId: '65',
      repository: 'octo-org/octo-repo',
      repositoryId: '74',
      ref: 'refs/heads/main',
      environment: undefined,
    });
  });

  it.each([
    ['repo:octo-org/octo-repo:pull_request', { pullRequest: true, qualifiers: [{ key: 'pull_request', value: undefined }] }],
    ['repo:octo-org/octo.repo_2:ref_type:tag', { repositoryName: 'octo.repo_2', refType: 'tag' }],
    ['repo:octo-org/octo-repo:ref:refs/tags/v1.2.3', { ref: 'refs/tags/v1.2.3' }],
    [
      'repo:octo-org/octo-repo:environment:prod:job_workflow_ref:octo-org/infra/.github/workflows/deploy.yml@refs/heads/main',
      { environment: 'prod', qualifiers: [{ key: 'environment', value: 'prod' }, { key: 'job_workflow_ref', value: 'octo-org/infra/.github/workflows/deploy.yml@refs/heads/main' }] },
    ],
    ['repo:octo-org/octo-repo', { qualifiers: [] }],
  ])('reads %s', (sub, expected) => {
    expect(parseGitHubSubject(sub)).toMatchObject(expected);
  });

  it.each([
    ['a subject without a repository', 'repository_owner_id:65:environment:prod'],
    ['an SSO subject', '00u8f2k1m3ZpQ4xY5d7'],
    ['an owner id without a repository id', 'repo:octo-org@65/octo-repo:ref:refs/heads/main'],
    ['a repository id that is not a number', 'repo:octo-org@65/octo-repo@x74:ref:refs/heads/main'],
    ['a qualifier without its value', 'repo:octo-org/octo-repo:environment'],
    ['an owner with a slash', 'repo:octo/org/octo-repo:ref:refs/heads/main'],
  ])('refuses %s', (_why, sub) => {
    expect(parseGitHubSubject(sub)).toBeUndefined();
  });

  it('agrees with the claims of tokens shaped like GitHub\'s, in both formats', async () => {
    const idp = await TestOidcIssuer.start({ clock: new ManualClock(), algorithms: ['ES256'] });
    try {
      for (const subjectFormat of ['name', 'immutable'] as const) {
        for (const overrides of [{}, { environment: undefined }, { environment: undefined, event_name: 'pull_request', ref: 'refs/pull/7/merge' }]) {
          const claims = idp.githubClaims(overrides, { subjectFormat });
          const parsed = parseGitHubSubject(String(claims.sub));
          expect(parsed?.format).toBe(subjectFormat);
          expect(parsed?.repository).toBe(claims.repository);
          if (subjectFormat === 'immutable') {
            expect(parsed?.repositoryId).toBe(claims.repository_id);
            expect(parsed?.ownerId).toBe(claims.repository_owner_id);
          }
          expect(parsed?.environment).toBe(claims.environment);
        }
      }
    } finally {
      await idp.close();
    }
  });
});

describe('GITHUB_CLAIMS', () => {
  it('documents every claim a GitHub Actions token carries, once, with a description', async () => {
    const idp = await TestOidcIssuer.start({ clock: new ManualClock(), algorithms: ['ES256'] });
    try {
      const documented = GITHUB_CLAIMS.map((c) => c.claim);
      expect(new Set(documented).size).toBe(documented.length);
      for (const claim of Object.keys(idp.githubClaims())) expect(documented).toContain(claim);
      for (const required of ['repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'ref', 'ref_type', 'environment', 'event_name', 'workflow_ref', 'job_workflow_ref', 'runner_environment', 'run_id', 'actor', 'actor_id', 'sha']) {
        expect(documented).toContain(required);
      }
      for (const { description } of GITHUB_CLAIMS) expect(description).toMatch(/^\S.{9,}\.$/);
    } finally {
      await idp.close();
    }
  });
});
