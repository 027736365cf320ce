import { z } from 'zod';
import { templatePlaceholders } from '../../policy/template.js';

/**
 * The configuration and request shapes of the certificate kind: a target (one
 * CA), a rule's allowance on it, and a request's scope.
 */

/** Leaf key types latchkey accepts in CSRs and generates: what the TLS ecosystem uses. */
export const LEAF_KEY_TYPES = ['ec-p256', 'rsa-2048', 'rsa-3072'] as const;
export type LeafKeyType = (typeof LEAF_KEY_TYPES)[number];
const leafKeyType = z.enum(LEAF_KEY_TYPES);

export const CERTIFICATE_USAGES = ['client_auth', 'server_auth'] as const;
export type CertificateUsage = (typeof CERTIFICATE_USAGES)[number];

/**
 * KeyUsage bits a rule may name for a leaf. `key_encipherment` (TLS 1.2 RSA
 * key exchange) needs an RSA key, `key_agreement` (static ECDH) an EC key.
 */
export const KEY_USAGES = ['digital_signature', 'key_encipherment', 'key_agreement'] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

/** The key usages of a leaf whose rule names none: signing, and for RSA keys also key encipherment. */
export function defaultKeyUsages(keyType: LeafKeyType): readonly KeyUsage[] {
  return keyType === 'ec-p256' ? ['digital_signature'] : ['digital_signature', 'key_encipherment'];
}

/** Largest CSR PEM accepted; real ones are well under 4 KiB. */
export const MAX_CSR_PEM_LENGTH = 16 * 1024;

// SPIFFE trust domains are lower-case letters, digits, ".", "-" and "_".
const trustDomain = z
  .string()
  .regex(/^[a-z0-9._-]{1,255}$/, 'expected a SPIFFE trust domain of lower-case letters, digits, ".", "-" and "_"');

export const certificateTargetSchema = z
  .strictObject({
    /** The SPIFFE trust domain this CA issues identities in; templates see it as `{trust_domain}`. */
    trust_domain: trustDomain,
    /** Issuing CA certificate (PEM). Required outside dev mode. */
    ca_cert_file: z.string().min(1).optional(),
    /** Issuing CA private key (unencrypted PEM, PKCS#8 or traditional). Required outside dev mode. */
    ca_key_file: z.string().min(1).optional(),
    /** Key type of the CA that dev mode generates when no files are given. */
    ca_key_type: leafKeyType.default('ec-p256'),
    /** Certificates above the issuing CA, in order towards the root (PEM files). */
    chain_files: z.array(z.string().min(1)).default([]),
  })
  .superRefine((value, ctx) => {
    if ((value.ca_cert_file === undefined) !== (value.ca_key_file === undefined)) {
      const missing = value.ca_cert_file === undefined ? 'ca_cert_file' : 'ca_key_file';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'expected ca_cert_file and ca_key_file together (or neither, in dev mode)' });
    }
  });
export type CertificateTarget = z.infer<typeof certificateTargetSchema>;

// A malformed template is a config error at load, not a surprise at the first request.
const template = (schema: z.ZodString) =>
  schema.superRefine((value, ctx) => {
    try {
      templatePlaceholders(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export const certificateAllowSchema = z
  .strictObject({
    /** SPIFFE ID template, e.g. `spiffe://{trust_domain}/team/{team}/{sub}`. */
    spiffe_id: template(
      z.string().regex(/^spiffe:\/\/[^/]+\/.+$/, 'expected a SPIFFE ID template with a path, such as "spiffe://{trust_domain}/gh/{repository_id}"'),
    ),
    /** DNS name templates for server certificates, e.g. `{service}.mesh.internal`. */
    dns_names: z.array(template(z.string().min(1).max(253))).default([]),
    /** Extended key usages. */
    usages: z.array(z.enum(CERTIFICATE_USAGES)).min(1).default(['client_auth']),
    /** Leaf key types a request may use. */
    key_types: z.array(leafKeyType).min(1).default([...LEAF_KEY_TYPES]),
    /** Whether the broker may generate the key (`"generate": true`) instead of signing a CSR. */
    allow_generate: z.boolean().default(true),
    /** KeyUsage bits of the leaf; default: `defaultKeyUsages` of its key type. */
    key_usages: z.array(z.enum(KEY_USAGES)).min(1).optional(),
  })
  .superRefine((allow, ctx) => {
    if (allow.key_usages && !allow.key_usages.includes('digital_signature')) {
      ctx.addIssue({ code: 'custom', path: ['key_usages'], message: 'key_usages must include digital_signature: TLS clients and servers sign the handshake with the key (OpenSSL refuses the certificate for TLS otherwise)' });
    }
    const needs: readonly [KeyUsage, (k: LeafKeyType) => boolean, string][] = [
      ['key_encipherment', (k) => k !== 'ec-p256', 'RSA'],
      ['key_agreement', (k) => k === 'ec-p256', 'EC'],
    ];
    for (const [usage, fits, what] of needs) {
      const misfit = allow.key_usages?.includes(usage) ? allow.key_types.find((k) => !fits(k)) : undefined;
      if (misfit) {
        ctx.addIssue({ code: 'custom', path: ['key_usages'], message: `${usage} needs an ${what} key, but key_types allows ${misfit}; list only ${what} key types` });
      }
    }
  });
export type CertificateAllow = z.infer<typeof certificateAllowSchema>;

/** Sign the caller's CSR (proof of possession: its signature is checked). */
export interface CsrScope {
  readonly csr: string;
}
/** Generate the key in the broker and return it with the certificate. */
export interface GenerateScope {
  readonly generate: true;
  readonly keyType: LeafKeyType;
  /** Also return a password-protected PKCS#12 bundle of the key and chain (any key type). */
  readonly pkcs12: boolean;
}
export type CertificateScope = CsrScope | GenerateScope;

export const certificateScopeSchema: z.ZodType<CertificateScope> = z
  .strictObject({
    csr: z.string().min(1).max(MAX_CSR_PEM_LENGTH, `expected a CSR of at most ${MAX_CSR_PEM_LENGTH} characters`).optional(),
    generate: z.literal(true).optional(),
    keyType: leafKeyType.optional(),
    pkcs12: z.boolean().optional(),
  })
  .superRefine((value, ctx) => {
    if ((value.csr === undefined) === (value.generate === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected exactly one of "csr" (a PEM certificate request) or "generate": true' });
    }
    if (value.csr !== undefined) {
      for (const field of ['keyType', 'pkcs12'] as const) {
        if (value[field] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [field], message: `"${field}" applies only with "generate": true; a CSR carries its own key` });
        }
      }
    }
  })
  .transform((value): CertificateScope =>
    value.csr !== undefined
      ? { csr: value.csr }
      : { generate: true, keyType: value.keyType ?? 'ec-p256', pkcs12: value.pkcs12 ?? false },
  );

export function isCsrScope(scope: CertificateScope): scope is CsrScope {
  return 'csr' in scope;
}
