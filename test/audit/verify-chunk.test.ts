import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { topLevelSeqAndPrev } from '../../src/audit/verify-chunk.js';

const line = (value: unknown) => Buffer.from(canonicalize(value) as string);
const PREV = Buffer.alloc(32, 7).toString('base64');

describe('reading an exported event without parsing it whole', () => {
  it('finds the event’s own seq and prev', () => {
    expect(topLevelSeqAndPrev(line({ type: 'grant.issued', seq: 41, prev: PREV, time: 't' }))).toEqual({ seq: 41, prev: PREV });
    expect(topLevelSeqAndPrev(line({ type: 'grant.issued', seq: 0 }))).toEqual({ seq: 0, prev: undefined });
  });

  it('is not fooled by a seq or prev inside a caller-controlled scope or claims', () => {
    const forged = Buffer.alloc(32, 9).toString('base64');
    const event = { claims: { prev: forged, seq: 1 }, scope: { prev: forged, seq: 99, nested: [{ seq: 3 }] }, seq: 5, prev: PREV, reasons: [{ prev: forged }] };
    expect(topLevelSeqAndPrev(line(event))).toEqual({ seq: 5, prev: PREV });
  });

  it('handles quotes, braces and backslashes inside strings', () => {
    const event = { detail: 'a "quoted" {brace} [bracket] \\ "seq":7', seq: 12 };
    expect(topLevelSeqAndPrev(line(event))).toEqual({ seq: 12, prev: undefined });
  });

  it.each([
    ['not an object', '[1,2]'],
    ['no seq', '{"type":"x"}'],
    ['a fractional seq', '{"seq":1.5}'],
    ['a negative seq', '{"seq":-1}'],
    ['a string seq', '{"seq":"1"}'],
    ['truncated', '{"seq":1,"type":"gr'],
    ['garbage', 'hello'],
  ])('refuses %s', (_what, text) => {
    expect(topLevelSeqAndPrev(Buffer.from(text))).toBeNull();
  });
});
