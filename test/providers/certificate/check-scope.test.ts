import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateKind } from '../../../src/providers/certificate/index.js';
import { allowance, makeCsr, makeKey, scope, scratchDir, target } from './support.js';

/** checkScope is pure: what the policy uses to explain why a certificate request does not fit a rule. */

const mesh = target({ trust_domain: 'latchkey.test' });
const teamRule = allowance({ spiffe_id: 'spiffe://{trust_domain}/team/{team}/{sub}', dns_names: ['{team}.mesh.internal'] });
const alice = { sub: 'alice', team: 'payments' };

function check(claims: Record<string, unknown>, scopeSettings: Record<string, unknown> = { generate: true }, allow = teamRule) {
  return certificateKind.checkScope({ target: mesh, allow, scope: scope(scopeSettings), claims });
}

let dir: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  dir = await scratchDir();
});
afterAll(() => dir.remove());

describe('checkScope', () => {
  it('passes a request whose claims render valid names', () => {
    expect(check(alice)).toBeNull();
    expect(check({ repository_id: 123456 }, undefined, allowance({ spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' }))).toBeNull();
  });

  it.each([
    ['a path traversal', '..'],
    ['a slash', 'payments/admin'],
    ['a space', 'pay ments'],
    ['an empty value', ''],
    ['a list', ['a', 'b']],
    ['an object', { team: 'payments' }],
  ])('denies a claim with %s in a SPIFFE path segment, naming the claim', (_label, team) => {
    const failure = check({ sub: 'alice', team });
    expect(failure).toMatchObject({ condition: 'allow.spiffe_id', field: 'team' });
    expect(failure?.message).toMatch(/\{team\}/);
  });

  it('denies a missing claim', () => {
    expect(check({ team: 'payments' })).toMatchObject({ condition: 'allow.spiffe_id', field: 'sub', actual: null });
  });

  it('a token cannot choose the trust domain', () => {
    expect(check({ ...alice, trust_domain: 'evil.test' })).toBeNull();
  });

  it('denies a SPIFFE ID outside the target\'s trust domain', () => {
    const failure = check(alice, undefined, allowance({ spiffe_id: 'spiffe://other.test/team/{team}' }));
    expect(failure).toMatchObject({ condition: 'allow.spiffe_id', actual: 'spiffe://other.test/team/payments' });
  });

  it('denies a claim that would add labels to a DNS name', () => {
    const failure = check({ sub: 'alice', team: 'evil.com' }, undefined, allowance({ spiffe_id: 'spiffe://{trust_domain}/x/{sub}', dns_names: ['{team}.mesh.internal'] }));
    expect(failure).toMatchObject({ condition: 'allow.dns_names[0]', field: 'team', actual: 'evil.com' });
  });

  it('denies a key type the rule does not list, for generated keys and CSRs alike', async () => {
    const ecOnly = allowance({ spiffe_id: 'spiffe://{trust_domain}/x/{sub}', key_types: ['ec-p256'] });
    expect(check(alice, { generate: true, keyType: 'rsa-2048' }, ecOnly)).toMatchObject({
      condition: 'allow.key_types',
      field: 'scope.keyType',
      expected: ['ec-p256'],
      actual: 'rsa-2048',
    });
    const csr = await makeCsr(dir, makeKey('rsa-3072'));
    expect(check(alice, { csr }, ecOnly)).toMatchObject({ condition: 'allow.key_types', field: 'scope.csr', actual: 'rsa-3072' });
    expect(check(alice, { csr: await makeCsr(dir, makeKey('ec-p256')) }, ecOnly)).toBeNull();
  });

  it('denies generation where the rule wants a CSR', () => {
    const csrOnly = allowance({ spiffe_id: 'spiffe://{trust_domain}/x/{sub}', allow_generate: false });
    expect(check(alice, { generate: true }, csrOnly)).toMatchObject({ condition: 'allow.allow_generate', field: 'scope.generate' });
  });

  it('leaves an unreadable CSR to issue, which refuses it as invalid_csr', () => {
    expect(check(alice, { csr: 'not a csr' })).toBeNull();
  });
});

describe('scope and allowance schemas', () => {
  it.each([
    [{}, /exactly one of "csr"/],
    [{ csr: 'x', generate: true }, /exactly one of "csr"/],
    [{ generate: false }, /./],
    [{ csr: 'x', keyType: 'rsa-2048' }, /applies only with "generate"/],
    [{ csr: 'x', pkcs12: true }, /applies only with "generate"/],
    [{ generate: true, keyType: 'rsa-1024' }, /./],
    [{ generate: true, extra: 1 }, /./],
  ])('refuses the scope %j', (input, message) => {
    const parsed = certificateKind.scopeSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).join('; ')).toMatch(message);
  });

  it('fills in generation defaults', () => {
    expect(scope({ generate: true })).toEqual({ generate: true, keyType: 'ec-p256', pkcs12: false });
  });

  it.each(['ec-p256', 'rsa-2048', 'rsa-3072'] as const)('accepts a PKCS#12 bundle for a generated %s key', (keyType) => {
    expect(scope({ generate: true, keyType, pkcs12: true })).toEqual({ generate: true, keyType, pkcs12: true });
  });

  it('fills in allowance defaults', () => {
    expect(allowance({ spiffe_id: 'spiffe://{trust_domain}/x/{sub}' })).toEqual({
      spiffe_id: 'spiffe://{trust_domain}/x/{sub}',
      dns_names: [],
      usages: ['client_auth'],
      key_types: ['ec-p256', 'rsa-2048', 'rsa-3072'],
      allow_generate: true,
    });
  });

  it.each([
    [{ spiffe_id: 'https://example.com/x' }, /SPIFFE ID template/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x/{sub' }, /never closed/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', dns_names: ['{bad name}.x'] }, /not a placeholder name/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', usages: ['code_signing'] }, /./],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', key_usages: ['digital_signature', 'key_encipherment'] }, /^key_encipherment needs an RSA key, but key_types allows ec-p256; list only RSA key types$/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', key_types: ['rsa-2048'], key_usages: ['digital_signature', 'key_agreement'] }, /^key_agreement needs an EC key, but key_types allows rsa-2048; list only EC key types$/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', key_types: ['rsa-2048'], key_usages: ['key_encipherment'] }, /^key_usages must include digital_signature: TLS clients and servers sign the handshake/],
    [{ spiffe_id: 'spiffe://{trust_domain}/x', key_usages: ['key_cert_sign'] }, /./],
  ])('refuses the allowance %j at config load', (input, message) => {
    const parsed = certificateKind.allowSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).join('; ')).toMatch(message);
  });
});
