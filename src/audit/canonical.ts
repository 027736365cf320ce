import canonicalize from 'canonicalize';
import { hashLeaf } from './merkle.js';
import type { AuditRecord } from './types.js';

/**
 * The canonical byte form of an event: RFC 8785 JSON Canonicalization Scheme
 * over the stored record, UTF-8. Anyone can recompute it from an export.
 */
export function canonicalEventBytes(record: AuditRecord): Buffer {
  const text = canonicalize(record);
  if (text === undefined) throw new TypeError('audit record is not serialisable');
  return Buffer.from(text, 'utf8');
}

/** RFC 6962 leaf hash: SHA-256(0x00 || bytes). */
export function leafHash(bytes: Uint8Array): Buffer {
  return hashLeaf(bytes);
}
