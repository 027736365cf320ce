import type { KeyObject } from 'node:crypto';
import { buildCrl } from './crl.js';
import type { Clock } from '../../clock.js';
import { InvalidScope, PolicyDenied, ProviderUnavailable } from '../../errors.js';
import type { IssueInput, IssuedCredential, RevokeInput, TargetProvider } from '../provider.js';
import type { CertificateAuthority } from './authority.js';
import { generateKey } from './authority.js';
import { parseCsr, verifyCsrSignature, type ParsedCsr } from './csr.js';
import { OID, fromDer, toBinary, toPem } from './der.js';
import { renderCertificateIdentity } from './identity.js';
import { buildPkcs12 } from './pkcs12.js';
import { defaultKeyUsages, isCsrScope, type CertificateAllow, type CertificateScope, type CertificateTarget, type CsrScope, type LeafKeyType } from './settings.js';
import { buildCertificate, distinguishedNameDer, keyIdentifierOf, leafExtensions, randomSerial } from './x509-builder.js';

/** Certificates start 30 s in the past, so a peer whose clock is a little behind accepts them. */
const BACKDATE_MS = 30_000;
/** The longest subject CN X.509 allows (ub-common-name); longer SPIFFE IDs leave the subject empty. */
const MAX_COMMON_NAME = 64;

const EMPTY_NAME = distinguishedNameDer([]);

// checkScope and issue see the same scope object: parse its CSR once for both.
const parsedCsrs = new WeakMap<CsrScope, ParsedCsr | Error>();

/** The CSR of a scope, parsed (not yet signature-checked); throws InvalidCsr. */
export function csrOf(scope: CsrScope): ParsedCsr {
  let parsed = parsedCsrs.get(scope);
  if (parsed === undefined) {
    try {
      parsed = parseCsr(scope.csr);
    } catch (err) {
      parsed = err as Error;
    }
    parsedCsrs.set(scope, parsed);
  }
  if (parsed instanceof Error) throw parsed;
  return parsed;
}

/**
 * One certificate target: a CA that signs short-lived leaf certificates whose
 * identity (SPIFFE URI SAN, DNS names) comes from the rule and the token.
 *
 * Nothing needs undoing at expiry, and `revoke` only records intent (the grant
 * is marked revoked by grants/): the certificates live minutes, and a CRL or
 * OCSP responder is future work.
 */
/** How long a CRL is valid: certificates live minutes, relying parties should refetch often. */
const CRL_VALIDITY_SECONDS = 600;

export class CertificateTargetProvider implements TargetProvider<CertificateAllow, CertificateScope> {
  readonly kind = 'certificate';
  readonly revokeOnExpiry = false;

  constructor(
    readonly name: string,
    private readonly target: CertificateTarget,
    private readonly authority: CertificateAuthority,
    private readonly clock: Clock,
  ) {}

  async issue(input: IssueInput<CertificateAllow, CertificateScope>): Promise<IssuedCredential> {
    const { allow, scope } = input;
    const rendered = renderCertificateIdentity(this.target, allow, input.claims);
    if ('failure' in rendered) throw new PolicyDenied(rendered.failure.message, { reasons: [rendered.failure] });
    const { spiffeId, dnsNames } = rendered.identity;

    let keyType: LeafKeyType;
    let subjectPublicKeyInfo: string;
    let subjectKeyIdentifier: string;
    let privateKey: KeyObject | undefined;
    if (isCsrScope(scope)) {
      const csr = csrOf(scope);
      verifyCsrSignature(csr);
      keyType = csr.keyType;
      subjectPublicKeyInfo = csr.subjectPublicKeyInfoDer;
      subjectKeyIdentifier = csr.subjectKeyIdentifier;
      this.checkKeyType(allow, keyType);
    } else {
      // checkScope refused these already; checked again because issuing is what counts.
      if (!allow.allow_generate) throw new InvalidScope('this rule does not allow broker-generated keys; send a CSR');
      keyType = scope.keyType;
      this.checkKeyType(allow, keyType);
      const pair = await generateKey(keyType);
      privateKey = pair.privateKey;
      subjectPublicKeyInfo = toBinary(pair.publicKey.export({ type: 'spki', format: 'der' }));
      subjectKeyIdentifier = keyIdentifierOf(fromDer(subjectPublicKeyInfo));
    }

    const notBefore = new Date(Math.floor((input.issuedAt.getTime() - BACKDATE_MS) / 1000) * 1000);
    const notAfter = new Date(Math.floor(Math.min(input.expiresAt.getTime(), this.authority.notAfter.getTime()) / 1000) * 1000);
    if (notAfter.getTime() <= input.issuedAt.getTime()) {
      throw new ProviderUnavailable(`the CA of target "${this.name}" expired at ${this.authority.notAfter.toISOString()}`);
    }
    const serial = randomSerial();
    const emptySubject = spiffeId.length > MAX_COMMON_NAME;
    const der = await buildCertificate(
      {
        serial,
        issuer: this.authority.subject,
        subject: emptySubject ? EMPTY_NAME : distinguishedNameDer([[OID.commonName, spiffeId]]),
        subjectPublicKeyInfo,
        notBefore,
        notAfter,
        extensions: leafExtensions({
          keyUsages: allow.key_usages ?? defaultKeyUsages(keyType),
          usages: allow.usages,
          spiffeId,
          dnsNames,
          emptySubject,
          subjectKeyIdentifier,
          authorityKeyIdentifier: this.authority.keyIdentifier,
        }),
      },
      this.authority.signer,
    );
    const certificate = toPem('CERTIFICATE', der);
    const serialHex = Buffer.from(serial, 'latin1').toString('hex');

    const credential: Record<string, unknown> = {
      certificate,
      chain: this.authority.chain,
      trustBundle: this.authority.trustBundle,
      serial: serialHex,
      spiffeId,
      dnsNames,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
    };
    if (privateKey !== undefined) {
      credential['privateKey'] = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      if (!isCsrScope(scope) && scope.pkcs12) {
        const bundle = buildPkcs12(privateKey, [certificate, ...this.authority.chain]);
        credential['pkcs12'] = bundle.pkcs12;
        credential['pkcs12Password'] = bundle.password;
      }
    }
    return {
      credential,
      providerRef: serialHex,
      auditDetails: {
        serial: serialHex,
        spiffe_id: spiffeId,
        dns_names: dnsNames,
        not_after: notAfter.toISOString(),
        key_type: keyType,
        key_source: privateKey === undefined ? 'csr' : 'generated',
      },
    };
  }

  /**
   * Nothing to undo at the CA: a revoked grant's serial is published on the
   * CRL (`revocationList`, served at /v1/ca/crl), built from the grant records.
   */
  async revoke(_input: RevokeInput): Promise<void> {}

  /** A CRL of the given serials, signed by this target's CA, valid for 10 minutes. */
  revocationList(revoked: readonly { providerRef: string; revokedAt: Date }[], now: Date): Promise<{ der: Buffer; pem: string }> {
    return buildCrl(this.authority, revoked.filter((r) => /^[0-9a-f]{2,40}$/i.test(r.providerRef)).map((r) => ({ serial: r.providerRef, revokedAt: r.revokedAt })), now, CRL_VALIDITY_SECONDS);
  }

  publicInfo(): Readonly<Record<string, unknown>> {
    return { trustBundle: this.authority.trustBundle };
  }

  /** Ready while the CA can still sign (its key is loaded at open and never re-read). */
  async ready(): Promise<boolean> {
    return this.clock.now().getTime() < this.authority.notAfter.getTime();
  }

  async close(): Promise<void> {}

  private checkKeyType(allow: CertificateAllow, keyType: LeafKeyType): void {
    if (!allow.key_types.includes(keyType)) {
      throw new InvalidScope(`key type ${keyType} is not allowed by this rule (allowed: ${allow.key_types.join(', ')})`);
    }
  }
}
