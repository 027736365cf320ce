import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../src/config/load.js';
import { postgresKind } from '../../../src/providers/postgres/index.js';
import type { PostgresAllowance, PostgresTargetSettings } from '../../../src/providers/postgres/settings.js';
import { providerKinds } from '../../../src/providers/registry.js';

describe('the dev policy target dev-db', () => {
  const config = loadConfigFile(new URL('../../../examples/dev-policy.yaml', import.meta.url).pathname, providerKinds);
  const target = config.targets['dev-db']!.settings as PostgresTargetSettings;
  const rule = config.rules.find((r) => r.name === 'analytics-reads-orders')!;
  const allow = rule.allow.find((a) => a.kind === 'postgres')!;
  const check = (scope: Record<string, unknown>) =>
    postgresKind.checkScope({ target, allow: allow.settings as PostgresAllowance, scope: postgresKind.scopeSchema.parse(scope), claims: { team: 'analytics' } });

  it('lets the analytics team read demo.orders for 15 minutes, and nothing else', () => {
    expect(rule.when).toEqual({ team: 'analytics' });
    expect(allow.maxTtl).toBe(900);
    expect(check({ database: 'demo', tables: ['demo.orders'] })).toBeNull();
    expect(check({ database: 'demo', tables: ['demo.customers'] })).toMatchObject({ condition: 'allow.tables' });
    expect(check({ database: 'demo', tables: ['demo.orders'], privileges: ['INSERT'] })).toMatchObject({ condition: 'target.privileges' });
  });
});
