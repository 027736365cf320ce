/**
 * Versioned schema changes, applied in order at start-up. Each module owns its
 * migration file; this list is the only place they meet. Never edit a released
 * migration: add a new one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

import { core } from './001-core.js';
import { auditTree } from './002-audit-tree.js';
import { auditAppend } from './003-audit-append.js';
import { auditRedundantIndexes } from './004-audit-redundant-indexes.js';
import { grantTtl } from './005-grant-ttl.js';

export const migrations: readonly Migration[] = [core, auditTree, auditAppend, auditRedundantIndexes, grantTtl];
