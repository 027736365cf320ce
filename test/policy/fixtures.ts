import { z } from 'zod';
import { validateConfig, type Config } from '../../src/config/load.js';
import type { ProviderKind } from '../../src/providers/provider.js';
import type { ConditionFailure, ScopeChecker } from '../../src/policy/types.js';

/**
 * A tiny credential kind for policy tests: its allowance names the tables a
 * rule permits, its scope the tables a request wants. Real providers are built
 * elsewhere; the policy only needs the schemas and a pure scope check.
 */
export const tablesKind: ProviderKind<Record<string, never>, { tables: string[] }, { tables: string[] }> = {
  kind: 'tables',
  targetSchema: z.strictObject({}),
  allowSchema: z.strictObject({ tables: z.array(z.string()).default([]) }),
  scopeSchema: z.strictObject({ tables: z.array(z.string()) }),
  checkScope({ allow, scope }): ConditionFailure | null {
    const extra = scope.tables.filter((t) => !allow.tables.includes(t));
    if (extra.length === 0) return null;
    return {
      condition: 'allow.tables',
      field: 'scope.tables',
      expected: allow.tables,
      actual: scope.tables,
      message: `tables ${extra.join(', ')} are not allowed (allowed: ${allow.tables.join(', ')})`,
    };
  },
  async open() {
    throw new Error('the policy tests never open a target');
  },
};

export const kinds = [tablesKind] as ProviderKind[];

/** Binds the fake kind's scope check to a request's scope, as grants does for real kinds. */
export function scopeChecker(scope: { tables: string[] } = { tables: [] }): ScopeChecker {
  return (allow) => tablesKind.checkScope({ target: {}, allow: allow.settings as { tables: string[] }, scope, claims: {} });
}

/** The issuers every test config has: GitHub Actions and a company SSO. */
export const issuers = [
  { name: 'github', preset: 'github', audience: 'latchkey' },
  { name: 'sso', issuer: 'https://sso.example.com', audience: 'latchkey' },
];

export const targets = {
  'prod-db': { kind: 'tables' },
  'analytics': { kind: 'tables' },
  'staging-db': { kind: 'tables' },
  'warehouse': { kind: 'tables', production: true },
  'prod-replica-for-tests': { kind: 'tables', production: false },
};

/** A GitHub rule with every condition lint asks for; tests remove or change one at a time. */
export function safeGitHubWhen(): Record<string, unknown> {
  return {
    repository: 'acme/app',
    repository_id: 1234,
    repository_owner: 'acme',
    repository_owner_id: 42,
    ref: 'refs/heads/main',
    event_name: { one_of: ['push', 'workflow_dispatch'] },
    runner_environment: 'github-hosted',
  };
}

/** A validated config from plain objects; `rules` and `roles` as they would be written in YAML. */
export function configWith(parts: { rules?: unknown[]; roles?: unknown; server?: unknown }): Config {
  return validateConfig({ issuers, targets, ...parts }, 'test.yaml', kinds);
}

/** Claims shaped like a GitHub Actions token of acme/app on main. */
export function githubClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'https://token.actions.githubusercontent.com',
    sub: 'repo:acme/app:ref:refs/heads/main',
    repository: 'acme/app',
    repository_id: '1234',
    repository_owner: 'acme',
    repository_owner_id: '42',
    ref: 'refs/heads/main',
    event_name: 'push',
    runner_environment: 'github-hosted',
    ...overrides,
  };
}
