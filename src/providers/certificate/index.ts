import type { ConditionFailure } from '../../policy/types.js';
import type { ProviderKind, ScopeCheckInput } from '../provider.js';
import { openAuthority } from './authority.js';
import { CertificateTargetProvider, csrOf } from './certificate-target.js';
import { renderCertificateIdentity } from './identity.js';
import {
  certificateAllowSchema,
  certificateScopeSchema,
  certificateTargetSchema,
  isCsrScope,
  type CertificateAllow,
  type CertificateScope,
  type CertificateTarget,
  type LeafKeyType,
} from './settings.js';

export type { CertificateAllow, CertificateScope, CertificateTarget, LeafKeyType } from './settings.js';
export { CertificateTargetProvider } from './certificate-target.js';

/**
 * Pure: may this scope be issued under this allowance? Checks the key type (of
 * the CSR, or the one to generate), whether generating is allowed, and that
 * the templates render to valid names for these claims. A CSR that cannot be
 * parsed is not a policy matter: `issue` refuses it with `invalid_csr`.
 */
function checkCertificateScope(input: ScopeCheckInput<CertificateTarget, CertificateAllow, CertificateScope>): ConditionFailure | null {
  const { target, allow, scope, claims } = input;
  let keyType: LeafKeyType | undefined;
  if (isCsrScope(scope)) {
    try {
      keyType = csrOf(scope).keyType;
    } catch {
      keyType = undefined;
    }
  } else {
    if (!allow.allow_generate) {
      return {
        condition: 'allow.allow_generate',
        field: 'scope.generate',
        expected: false,
        actual: true,
        message: 'this rule does not allow broker-generated keys; send a CSR',
      };
    }
    keyType = scope.keyType;
  }
  if (keyType !== undefined && !allow.key_types.includes(keyType)) {
    return {
      condition: 'allow.key_types',
      field: isCsrScope(scope) ? 'scope.csr' : 'scope.keyType',
      expected: allow.key_types,
      actual: keyType,
      message: `key type ${keyType} is not allowed (allowed: ${allow.key_types.join(', ')})`,
    };
  }
  const rendered = renderCertificateIdentity(target, allow, claims);
  return 'failure' in rendered ? rendered.failure : null;
}

/**
 * The `certificate` kind: short-lived X.509 certificates for mutual TLS, with
 * a SPIFFE ID (URI SAN) and DNS names taken from the rule and the token,
 * signed from a CSR (signature checked) or for a broker-generated key.
 */
export const certificateKind: ProviderKind<CertificateTarget, CertificateAllow, CertificateScope> = {
  kind: 'certificate',
  targetSchema: certificateTargetSchema,
  allowSchema: certificateAllowSchema,
  scopeSchema: certificateScopeSchema,
  checkScope: checkCertificateScope,
  async open(name, target, deps) {
    const authority = await openAuthority(name, target, deps);
    return new CertificateTargetProvider(name, target, authority, deps.clock);
  },
};
