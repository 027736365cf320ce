import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { providerKinds } from '../../src/providers/registry.js';

const EXPECTED =
  'expected a string, number or boolean (exact match) or one of {equals: value}, {glob: "pattern"}, {one_of: [values]}, {contains: value or [values]}, {not_one_of: [values]}';

/** A file with one rule whose `when.repository` is `condition` (YAML flow text). */
function fileWithCondition(condition: string): string {
  return [
    'issuers: [{ name: sso, issuer: "https://sso.example.com", audience: latchkey }]',
    'targets: { mesh: { kind: certificate, trust_domain: example.com } }',
    'rules:',
    '  - name: eng',
    '    issuer: sso',
    `    when: { groups: { contains: eng }, repository: ${condition} }`,
    '    allow: [{ kind: certificate, target: mesh, spiffe_id: "spiffe://{trust_domain}/user/{sub}" }]',
  ].join('\n');
}

function problemsOf(condition: string): string[] {
  try {
    parseConfig(fileWithCondition(condition), 'policy.yaml', providerKinds);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).detail['problems'] as string[];
  }
  throw new Error(`condition ${condition} was accepted`);
}

describe('a malformed rule condition', () => {
  it.each([
    ['an unknown key is named, with every form the condition may take', '{ glb: x }', [`rules[0].when.repository: unknown condition "glb": ${EXPECTED}`]],
    ['two keys in one condition are refused', '{ glob: "acme/*", one_of: [a] }', [`rules[0].when.repository: expected exactly one condition, got glob and one_of: ${EXPECTED}`]],
    ['an empty mapping is refused', '{}', [`rules[0].when.repository: expected exactly one condition, got none: ${EXPECTED}`]],
    ['a list is not a condition', '[a, b]', [`rules[0].when.repository: ${EXPECTED}, got a list`]],
    ['an empty value is not a condition', 'null', [`rules[0].when.repository: ${EXPECTED}, got null`]],
    ['an empty glob names the glob', '{ glob: "" }', ['rules[0].when.repository.glob: expected a non-empty glob pattern']],
    ['a glob that is not text names the glob', '{ glob: [a] }', ['rules[0].when.repository.glob: expected a glob pattern (a string)']],
    ['an empty one_of names the one_of', '{ one_of: [] }', ['rules[0].when.repository.one_of: expected at least one value']],
    ['a mapping inside one_of names its position', '{ one_of: [a, { b: c }] }', ['rules[0].when.repository.one_of[1]: expected a string, number or boolean']],
    ['a mapping as contains says what contains takes', '{ contains: { b: c } }', ['rules[0].when.repository.contains: expected a string, number or boolean, or a non-empty list of them']],
    ['a mapping as equals says what equality takes', '{ equals: { b: c } }', ['rules[0].when.repository.equals: expected a string, number or boolean']],
  ])('%s', (_what, condition, problems) => {
    expect(problemsOf(condition)).toEqual(problems);
  });

  it('is reported in the message with the file it is in', () => {
    expect(() => parseConfig(fileWithCondition('{ glb: x }'), 'policy.yaml', providerKinds)).toThrow(
      `invalid configuration in policy.yaml:\n  - rules[0].when.repository: unknown condition "glb": ${EXPECTED}`,
    );
  });

  it.each([
    ['a bare value', 'acme/app', 'acme/app'],
    ['a number', '1234', 1234],
    ['{equals}', '{ equals: push }', { equals: 'push' }],
    ['{glob}', '{ glob: "acme/*" }', { glob: 'acme/*' }],
    ['{one_of}', '{ one_of: [a, 2, true] }', { one_of: ['a', 2, true] }],
    ['{contains} with one value', '{ contains: eng }', { contains: 'eng' }],
    ['{contains} with a list', '{ contains: [eng, ops] }', { contains: ['eng', 'ops'] }],
    ['{not_one_of}', '{ not_one_of: [x] }', { not_one_of: ['x'] }],
  ])('accepts %s unchanged', (_what, condition, expected) => {
    const config = parseConfig(fileWithCondition(condition), 'policy.yaml', providerKinds);
    expect(config.rules[0]?.when['repository']).toEqual(expected);
  });
});
