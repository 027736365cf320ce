import type { Claims } from '../../identity/types.js';
import { TemplateError } from '../../errors.js';
import { SPIFFE_PATH_SEGMENT, renderTemplate } from '../../policy/template.js';
import type { ConditionFailure } from '../../policy/types.js';
import type { CertificateAllow, CertificateTarget } from './settings.js';

/** Who a certificate says its holder is: from the rule's templates and the token's claims only. */
export interface CertificateIdentity {
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
}

/** One DNS label: a claim can fill a label, never add dots (and so never climb out of the rule's suffix). */
const DNS_LABEL = /(?!-)[A-Za-z0-9-]{1,63}(?<!-)/;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SPIFFE_SEGMENT_WHOLE = new RegExp(`^(?:${SPIFFE_PATH_SEGMENT.source})$`);
/** SPIFFE IDs are at most 2048 bytes (SPIFFE-ID spec, 2.3). */
const MAX_SPIFFE_ID_LENGTH = 2048;

export type IdentityResult = { readonly identity: CertificateIdentity } | { readonly failure: ConditionFailure };

/**
 * Renders the allowance's SPIFFE ID and DNS name templates with the token's
 * claims plus `trust_domain` (the target's, which a claim cannot override).
 * A claim that would make an invalid name (`../`, `/`, a space, a missing
 * claim) gives a ConditionFailure: a denial, never a malformed certificate.
 */
export function renderCertificateIdentity(target: CertificateTarget, allow: CertificateAllow, claims: Claims): IdentityResult {
  // checkScope and issue render for the same (immutable) claims and allowance: once is enough.
  let byAllowance = rendered.get(claims);
  if (!byAllowance) {
    byAllowance = new WeakMap();
    rendered.set(claims, byAllowance);
  }
  let byTarget = byAllowance.get(allow);
  if (!byTarget) {
    byTarget = new WeakMap();
    byAllowance.set(allow, byTarget);
  }
  let result = byTarget.get(target);
  if (!result) {
    result = render(target, allow, claims);
    byTarget.set(target, result);
  }
  return result;
}

const rendered = new WeakMap<Claims, WeakMap<CertificateAllow, WeakMap<CertificateTarget, IdentityResult>>>();

function render(target: CertificateTarget, allow: CertificateAllow, claims: Claims): IdentityResult {
  const values = { ...claims, trust_domain: target.trust_domain };

  let spiffeId: string;
  try {
    spiffeId = renderTemplate(allow.spiffe_id, values, { allowed: SPIFFE_PATH_SEGMENT, what: 'a SPIFFE path segment ([A-Za-z0-9._-], not "." or "..")' });
  } catch (err) {
    return { failure: templateFailure('allow.spiffe_id', allow.spiffe_id, claims, err) };
  }
  const spiffeProblem = spiffeIdProblem(spiffeId, target.trust_domain);
  if (spiffeProblem) {
    return {
      failure: {
        condition: 'allow.spiffe_id',
        field: 'spiffe_id',
        expected: `a SPIFFE ID in trust domain ${target.trust_domain}`,
        actual: spiffeId,
        message: `the SPIFFE ID ${JSON.stringify(spiffeId)} is not valid: ${spiffeProblem}`,
      },
    };
  }

  const dnsNames: string[] = [];
  for (const [index, template] of allow.dns_names.entries()) {
    const condition = `allow.dns_names[${index}]`;
    let name: string;
    try {
      name = renderTemplate(template, values, { allowed: DNS_LABEL, what: 'a DNS label (letters, digits, "-")' }).toLowerCase();
    } catch (err) {
      return { failure: templateFailure(condition, template, claims, err) };
    }
    if (!DNS_NAME.test(name)) {
      return {
        failure: { condition, field: 'dns_names', expected: 'a valid DNS name', actual: name, message: `the DNS name ${JSON.stringify(name)} is not valid` },
      };
    }
    if (!dnsNames.includes(name)) dnsNames.push(name);
  }
  return { identity: { spiffeId, dnsNames } };
}

function spiffeIdProblem(spiffeId: string, trustDomain: string): string | null {
  if (spiffeId.length > MAX_SPIFFE_ID_LENGTH) return `longer than ${MAX_SPIFFE_ID_LENGTH} characters`;
  const prefix = `spiffe://${trustDomain}/`;
  if (!spiffeId.startsWith(prefix)) return `expected it to start with ${prefix} (the target's trust domain)`;
  const segments = spiffeId.slice(prefix.length).split('/');
  if (segments.some((segment) => !SPIFFE_SEGMENT_WHOLE.test(segment))) {
    return 'every path segment must be non-empty letters, digits, ".", "-" or "_", and not "." or ".."';
  }
  return null;
}

function templateFailure(condition: string, template: string, claims: Claims, err: unknown): ConditionFailure {
  if (!(err instanceof TemplateError)) throw err; // a malformed template is a config bug, caught at load
  const claim = typeof err.detail['claim'] === 'string' ? err.detail['claim'] : undefined;
  return {
    condition,
    field: claim ?? condition,
    expected: err.detail['expected'] ?? template,
    actual: claim === undefined ? undefined : (claims[claim] ?? null),
    message: err.message,
  };
}
