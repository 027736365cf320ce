import { InvalidScope } from '../../errors.js';
import type { ConditionFailure } from '../../policy/types.js';
import type { ScopeCheckInput } from '../provider.js';
import type { PostgresAllowance, PostgresScope, PostgresTargetSettings, Privilege } from './settings.js';
import {
  displayIdentifier,
  displayQualifiedName,
  isSystemSchema,
  parseIdentifier,
  parseQualifiedName,
  parseSchemaPattern,
  parseTablePattern,
  type NamePattern,
  type QualifiedName,
} from './sql-identifiers.js';

/** One table of a scope, parsed, with the columns the grant will cover (null: the whole table). */
export interface ResolvedTable {
  readonly name: QualifiedName;
  /** `schema.table` as people read it (quoted only where needed). */
  readonly display: string;
  readonly columns: readonly string[] | null;
}

/** A scope with every name parsed and the allowance's column limits applied. */
export interface ResolvedScope {
  readonly database: string;
  readonly tables: readonly ResolvedTable[];
  readonly privileges: readonly Privilege[];
}

function parseOrThrow<T>(result: { ok: true; value: T } | { ok: false; reason: string }, what: string, text: string): T {
  if (!result.ok) throw new InvalidScope(`${JSON.stringify(text)} is not a ${what}: ${result.reason}`, { name: text, reason: result.reason });
  return result.value;
}

/** Column lists keyed by the table's display form; a table named twice gets the union. */
function columnsByTable(columns: Readonly<Record<string, readonly string[]>> | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [table, list] of Object.entries(columns ?? {})) {
    const key = displayQualifiedName(parseOrThrow(parseQualifiedName(table), 'table name', table));
    const parsed = list.map((c) => parseOrThrow(parseIdentifier(c), 'column name', c));
    out.set(key, [...new Set([...(out.get(key) ?? []), ...parsed])]);
  }
  return out;
}

/**
 * Parses a scope (already accepted by `postgresScopeSchema`) and works out
 * each table's columns: those requested, else those the allowance limits the
 * table to, else the whole table. Throws InvalidScope for a name that does not
 * parse (only reachable when a caller skipped the schema).
 */
export function resolveScope(scope: PostgresScope, allow: PostgresAllowance): ResolvedScope {
  const requestedColumns = columnsByTable(scope.columns);
  const allowedColumns = columnsByTable(allow.columns);
  const tables = new Map<string, ResolvedTable>();
  for (const text of scope.tables) {
    const name = parseOrThrow(parseQualifiedName(text), 'table name', text);
    const display = displayQualifiedName(name);
    const columns = requestedColumns.get(display) ?? allowedColumns.get(display) ?? null;
    tables.set(display, { name, display, columns });
  }
  return { database: scope.database, tables: [...tables.values()], privileges: [...new Set(scope.privileges)] };
}

function patterns(list: readonly string[], parse: (text: string) => ReturnType<typeof parseTablePattern>): NamePattern[] {
  // The target and allowance schemas already refused bad globs; a bad one here is a bug.
  return list.map((text) => {
    const parsed = parse(text);
    if (!parsed.ok) throw new TypeError(`invalid glob ${JSON.stringify(text)}: ${parsed.reason}`);
    return parsed.value;
  });
}

const failure = (condition: string, field: string, expected: unknown, actual: unknown, message: string): ConditionFailure => ({
  condition,
  field,
  expected,
  actual,
  message,
});

/**
 * Pure: does the scope fit both the rule's allowance and the target's
 * allow-list? Returns the first thing that does not, naming the database,
 * privilege, table or column. Existence in the catalog is checked by `issue`.
 */
export function checkPostgresScope(input: ScopeCheckInput<PostgresTargetSettings, PostgresAllowance, PostgresScope>): ConditionFailure | null {
  const { target, allow, scope } = input;
  const resolved = resolveScope(scope, allow);

  if (!target.databases.includes(resolved.database)) {
    return failure('target.databases', 'scope.database', target.databases, resolved.database, `database ${JSON.stringify(resolved.database)} is not offered by this target`);
  }
  if (allow.databases && !allow.databases.includes(resolved.database)) {
    return failure('allow.databases', 'scope.database', allow.databases, resolved.database, `database ${JSON.stringify(resolved.database)} is not allowed by this rule`);
  }
  for (const privilege of resolved.privileges) {
    if (!target.privileges.includes(privilege)) {
      return failure('target.privileges', 'scope.privileges', target.privileges, privilege, `privilege ${privilege} is not offered by this target`);
    }
    if (!allow.privileges.includes(privilege)) {
      return failure('allow.privileges', 'scope.privileges', allow.privileges, privilege, `privilege ${privilege} is not allowed by this rule`);
    }
  }

  const targetSchemas = target.schemas ? patterns(target.schemas, parseSchemaPattern) : null;
  const targetTables = patterns(target.tables, parseTablePattern);
  const allowTables = patterns(allow.tables, parseTablePattern);
  const allowedColumns = columnsByTable(allow.columns);
  for (const table of resolved.tables) {
    const { name, display } = table;
    if (isSystemSchema(name.schema)) {
      return failure('target.schemas', 'scope.tables', 'a user schema', display, `table ${display} is in a system schema, which is never granted`);
    }
    if (targetSchemas && !targetSchemas.some((p) => p.matches(name))) {
      return failure('target.schemas', 'scope.tables', target.schemas, display, `schema ${displayIdentifier(name.schema)} (of table ${display}) is not offered by this target`);
    }
    if (!targetTables.some((p) => p.matches(name))) {
      return failure('target.tables', 'scope.tables', target.tables, display, `table ${display} is not offered by this target`);
    }
    if (!allowTables.some((p) => p.matches(name))) {
      return failure('allow.tables', 'scope.tables', allow.tables, display, `table ${display} is not allowed by this rule`);
    }
    const limit = allowedColumns.get(display);
    if (limit && table.columns) {
      const extra = table.columns.find((c) => !limit.includes(c));
      if (extra !== undefined) {
        return failure('allow.columns', `scope.columns`, limit, extra, `column ${displayIdentifier(extra)} of ${display} is not allowed by this rule`);
      }
    }
    if (limit && resolved.privileges.includes('DELETE')) {
      return failure('allow.columns', 'scope.privileges', 'no DELETE on a column-limited table', 'DELETE', `DELETE on ${display} cannot be limited to columns, and this rule limits ${display} to columns`);
    }
  }
  return null;
}
