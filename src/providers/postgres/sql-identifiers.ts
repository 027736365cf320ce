import pg from 'pg';

/**
 * SQL identifiers as they arrive in requests and configuration: parsed by the
 * rules of PostgreSQL's lexer (unquoted names fold to lower case, `"..."`
 * keeps case and doubles `"` inside), but stricter, because a name that needs
 * a second look is refused rather than guessed at:
 *
 * - ASCII only (a Cyrillic `о` in `demo.оrders` is a look-alike, not a table);
 * - no whitespace outside quotes, no control characters, no NUL anywhere;
 * - at most 63 bytes per identifier (PostgreSQL would silently truncate);
 * - no `"` inside a quoted identifier (SQL's `""`): no real table needs one;
 * - exactly the number of dotted parts the caller expects; `U&"..."` and
 *   anything else that is not an identifier is an error with its position.
 *
 * Output is the identifier's true value; SQL text is always made with pg's
 * `escapeIdentifier`, never by hand.
 */

/** PostgreSQL's NAMEDATALEN - 1. */
export const MAX_IDENTIFIER_BYTES = 63;

/** A table (or view) name, resolved: `schema` defaults to `public` when the request gave one part. */
export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

interface PathOptions {
  /** Most dotted parts accepted. */
  readonly maxParts: number;
  /** Accept `*` and `?` in unquoted parts (configuration globs). */
  readonly glob: boolean;
}

/** A parsed part; `glob` marks a pattern part whose `*`/`?` are wildcards. */
interface Part {
  readonly text: string;
  readonly quoted: boolean;
}

const isLetter = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isDigit = (c: string) => c >= '0' && c <= '9';

function describeChar(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (cp === 0) return 'a NUL character';
  if (cp < 0x20 || cp === 0x7f) return `a control character (${hex})`;
  if (cp > 0x7f) return `the non-ASCII character ${hex}`;
  if (c === ' ') return 'a space';
  return JSON.stringify(c);
}

function parsePath(text: string, options: PathOptions): ParseResult<Part[]> {
  const fail = (reason: string): ParseResult<Part[]> => ({ ok: false, reason });
  if (text.length === 0) return fail('it is empty');
  // Refuse every character outside printable ASCII up front, so no later rule can let one through.
  let position = 0;
  for (const c of text) {
    position++;
    const cp = c.codePointAt(0)!;
    if (cp < 0x20 || cp > 0x7e) return fail(`it contains ${describeChar(c)} at position ${position}`);
  }
  const parts: Part[] = [];
  let i = 0;
  for (;;) {
    let part: Part;
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) return fail('a quoted identifier is not closed');
        if (text[i] === '"') {
          // SQL would read "" as a quote inside the name; no real table needs one, and attacks do.
          if (text[i + 1] === '"') return fail(`a double quote inside an identifier (position ${i + 1}) is not accepted`);
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      if (value.length === 0) return fail('it contains an empty quoted identifier ""');
      part = { text: value, quoted: true };
    } else {
      const start = i;
      const first = text[i];
      if (first === undefined) return fail('it ends with "."');
      const wildcard = (c: string) => options.glob && (c === '*' || c === '?');
      if (!isLetter(first) && !wildcard(first)) {
        return fail(`expected an identifier at position ${i + 1}, found ${describeChar(first)}`);
      }
      while (i < text.length && (isLetter(text[i]!) || isDigit(text[i]!) || text[i] === '$' || wildcard(text[i]!))) i++;
      // PostgreSQL folds unquoted identifiers to lower case (ASCII only, which is all we accept).
      part = { text: text.slice(start, i).toLowerCase(), quoted: false };
    }
    if (Buffer.byteLength(part.text, 'utf8') > MAX_IDENTIFIER_BYTES) {
      return fail(`the identifier ${JSON.stringify(part.text)} is longer than ${MAX_IDENTIFIER_BYTES} bytes`);
    }
    parts.push(part);
    if (i === text.length) break;
    if (text[i] !== '.') return fail(`expected "." or the end at position ${i + 1}, found ${describeChar(text[i]!)}`);
    if (parts.length === options.maxParts) {
      return fail(`expected at most ${options.maxParts} dotted part${options.maxParts === 1 ? '' : 's'}`);
    }
    i++;
  }
  return { ok: true, value: parts };
}

/**
 * Parses `schema.table` or `table` (schema `public`) from a request. Refuses
 * anything that is not exactly one or two identifiers, with the reason.
 */
export function parseQualifiedName(text: string): ParseResult<QualifiedName> {
  const parsed = parsePath(text, { maxParts: 2, glob: false });
  if (!parsed.ok) return parsed;
  const [a, b] = parsed.value;
  return { ok: true, value: b ? { schema: a!.text, name: b.text } : { schema: 'public', name: a!.text } };
}

/** Parses one identifier (a column name). */
export function parseIdentifier(text: string): ParseResult<string> {
  const parsed = parsePath(text, { maxParts: 1, glob: false });
  if (!parsed.ok) return parsed;
  return { ok: true, value: parsed.value[0]!.text };
}

/** A glob over identifiers from configuration: `demo.*`, `sales.order_?`, `"Mixed"."*"`. */
export interface NamePattern {
  /** The pattern as written, for messages. */
  readonly source: string;
  matches(name: QualifiedName): boolean;
}

function partMatcher(part: Part): (value: string) => boolean {
  if (part.quoted) return (value) => value === part.text;
  const regex = new RegExp(
    `^${part.text
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[$]/g, '\\$')))
      .join('')}$`,
    's',
  );
  return (value) => regex.test(value);
}

/** Parses a table glob from configuration (`schema.table`, one part means schema `public`). */
export function parseTablePattern(text: string): ParseResult<NamePattern> {
  const parsed = parsePath(text, { maxParts: 2, glob: true });
  if (!parsed.ok) return parsed;
  const [a, b] = parsed.value;
  const schema = b ? partMatcher(a!) : (value: string) => value === 'public';
  const table = partMatcher(b ?? a!);
  return { ok: true, value: { source: text, matches: (n) => schema(n.schema) && table(n.name) } };
}

/** Parses a schema glob from configuration (one part). */
export function parseSchemaPattern(text: string): ParseResult<NamePattern> {
  const parsed = parsePath(text, { maxParts: 1, glob: true });
  if (!parsed.ok) return parsed;
  const schema = partMatcher(parsed.value[0]!);
  return { ok: true, value: { source: text, matches: (n) => schema(n.schema) } };
}

const PLAIN = /^[a-z_][a-z0-9_$]*$/;

/** How a name reads in messages and audit records: quoted only where SQL would need it. */
export function displayIdentifier(value: string): string {
  return PLAIN.test(value) ? value : pg.escapeIdentifier(value);
}

/** `schema.table`, readable and unambiguous. */
export function displayQualifiedName(name: QualifiedName): string {
  return `${displayIdentifier(name.schema)}.${displayIdentifier(name.name)}`;
}

/** `"schema"."table"` for SQL text. */
export function quoteQualifiedName(name: QualifiedName): string {
  return `${pg.escapeIdentifier(name.schema)}.${pg.escapeIdentifier(name.name)}`;
}

/** Schemas no grant may ever reach, whatever the globs say (system catalogs, other sessions' temp schemas). */
export function isSystemSchema(schema: string): boolean {
  return schema.startsWith('pg_') || schema === 'information_schema';
}
