import { describe, expect, it } from 'vitest';
import { parseIdentifier, parseQualifiedName, parseTablePattern, quoteQualifiedName } from '../../../src/providers/postgres/sql-identifiers.js';

describe('table names from requests', () => {
  it.each([
    ['demo.orders', { schema: 'demo', name: 'orders' }],
    ['DEMO.Orders', { schema: 'demo', name: 'orders' }],
    ['"demo"."orders"', { schema: 'demo', name: 'orders' }],
    ['"Demo".orders', { schema: 'Demo', name: 'orders' }],
    ['"my schema"."my table"', { schema: 'my schema', name: 'my table' }],
    ['orders', { schema: 'public', name: 'orders' }],
    ['demo.order_items$2', { schema: 'demo', name: 'order_items$2' }],
    [`demo.${'a'.repeat(63)}`, { schema: 'demo', name: 'a'.repeat(63) }],
  ])('reads %j as the table %j', (text, expected) => {
    expect(parseQualifiedName(text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['demo.orders; DROP TABLE x', /position 12, found ";"/],
    ['"demo"."orders"""', /double quote inside an identifier/],
    ['demo.ord\u0000ers', /NUL character at position 9/],
    ['demo.\u043erders', /non-ASCII character U\+043E at position 6/],
    ['\uff44\uff45\uff4d\uff4f.orders', /non-ASCII character U\+FF44/],
    ['demo.orders\u200b', /non-ASCII character U\+200B/],
    ['demo.orders\n', /control character \(U\+000A\)/],
    [`demo.${'a'.repeat(64)}`, /longer than 63 bytes/],
    [`demo."${'b'.repeat(64)}"`, /longer than 63 bytes/],
    ['U&"d\\0061ta"', /found "&"/],
    ['db.demo.orders', /at most 2 dotted parts/],
    ['', /empty/],
    [' demo.orders', /found a space/],
    ['demo .orders', /position 5, found a space/],
    ['demo.', /ends with "."/],
    ['.orders', /expected an identifier at position 1/],
    ['demo.""', /empty quoted identifier/],
    ['demo."orders', /not closed/],
    ['demo.*', /expected an identifier at position 6, found "\*"/],
    ['1demo.orders', /expected an identifier at position 1, found "1"/],
  ])('refuses %j, saying why', (text, reason) => {
    const parsed = parseQualifiedName(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('quotes names for SQL with pg, so the value comes back unchanged', () => {
    expect(quoteQualifiedName({ schema: 'Demo', name: 'my table' })).toBe('"Demo"."my table"');
  });
});

describe('column names', () => {
  it('accepts one identifier and folds it', () => {
    expect(parseIdentifier('Total_Cents')).toEqual({ ok: true, value: 'total_cents' });
    expect(parseIdentifier('"Total"')).toEqual({ ok: true, value: 'Total' });
  });
  it('refuses dotted or spliced names', () => {
    expect(parseIdentifier('orders.id').ok).toBe(false);
    expect(parseIdentifier('id; DROP TABLE x').ok).toBe(false);
    expect(parseIdentifier('id"--').ok).toBe(false);
  });
});

describe('table globs in configuration', () => {
  const matches = (pattern: string, schema: string, name: string) => {
    const parsed = parseTablePattern(pattern);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.value.matches({ schema, name });
  };
  it.each([
    ['demo.*', 'demo', 'orders', true],
    ['demo.*', 'demox', 'orders', false],
    ['demo.order?', 'demo', 'orders', true],
    ['demo.order?', 'demo', 'order', false],
    ['*.orders', 'sales', 'orders', true],
    ['DEMO.Orders', 'demo', 'orders', true],
    ['"Demo".*', 'demo', 'orders', false],
    ['"Demo".*', 'Demo', 'orders', true],
    ['"demo"."*"', 'demo', 'orders', false],
    ['orders', 'public', 'orders', true],
    ['orders', 'demo', 'orders', false],
    ['demo.a$b', 'demo', 'a$b', true],
  ])('%j matches %s.%s: %s', (pattern, schema, name, expected) => {
    expect(matches(pattern, schema, name)).toBe(expected);
  });
});
