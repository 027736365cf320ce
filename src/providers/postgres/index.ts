import type { ProviderKind } from '../provider.js';
import { checkPostgresScope } from './scope.js';
import {
  postgresAllowSchema,
  postgresScopeSchema,
  postgresTargetSchema,
  type PostgresAllowance,
  type PostgresScope,
  type PostgresTargetSettings,
} from './settings.js';
import { PostgresTargetProvider } from './target.js';

/**
 * The `postgres` credential kind: a fresh login per grant that can use exactly
 * the named tables (or columns) of one database, and is dropped — sessions,
 * privileges, owned objects and all — at expiry or revocation.
 */
export const postgresKind: ProviderKind<PostgresTargetSettings, PostgresAllowance, PostgresScope> = {
  kind: 'postgres',
  targetSchema: postgresTargetSchema,
  allowSchema: postgresAllowSchema,
  scopeSchema: postgresScopeSchema,
  checkScope: checkPostgresScope,
  open: (name, target, deps) => PostgresTargetProvider.open(name, target, deps),
};

export { PostgresTargetProvider } from './target.js';
export { seedDemoSchema } from './demo.js';
export type { PostgresCredential } from './credential.js';
export type { PostgresAllowance, PostgresScope, PostgresTargetSettings, Privilege } from './settings.js';
