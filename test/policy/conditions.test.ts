import { describe, expect, it } from 'vitest';
import type { ConditionConfig } from '../../src/config/schema.js';
import { compileCondition, compileGlob, firstFailingCondition, compileWhen } from '../../src/policy/conditions.js';

describe('claim conditions', () => {
  const cases: [string, ConditionConfig, unknown, boolean][] = [
    // [what, condition, claim value, matches]
    ['a bare string equals the same string', 'refs/heads/main', 'refs/heads/main', true],
    ['a bare string differs from another string', 'refs/heads/main', 'refs/heads/feature', false],
    ['equality is case-sensitive', 'acme/app', 'ACME/app', false],
    ['{equals} equals', { equals: 'push' }, 'push', true],
    ['a number condition equals the string claim (repository_id)', 1234, '1234', true],
    ['a string condition equals the number claim', '1234', 1234, true],
    ['numbers compare by their exact text', 1234, '01234', false],
    ['a boolean equals a boolean', true, true, true],
    ['a boolean does not equal 1', true, 1, false],
    ['equality never matches a list claim', 'admins', ['admins'], false],
    ['{glob} matches within a segment', { glob: 'acme/*' }, 'acme/app', true],
    ['{glob} * does not cross /', { glob: 'acme/*' }, 'acme/app/extra', false],
    ['{glob} is anchored at the start', { glob: 'acme/*' }, 'evil-acme/app', false],
    ['{glob} is anchored at the end', { glob: 'acme/app' }, 'acme/app-evil', false],
    ['{glob} ** crosses /', { glob: 'refs/heads/release/**' }, 'refs/heads/release/2024/q1', true],
    ['{glob} dots are literal', { glob: 'v1.2' }, 'v1x2', false],
    ['{glob} regex syntax is literal', { glob: 'a+b' }, 'aab', false],
    ['{glob} question marks are literal', { glob: 'app?' }, 'apps', false],
    ['{glob} brackets are literal', { glob: '[ab]' }, 'a', false],
    ['{glob} matches a number claim as text', { glob: '12*' }, 1234, true],
    ['{glob} never matches a list', { glob: '*' }, ['x'], false],
    ['{one_of} matches a listed value', { one_of: ['push', 'workflow_dispatch'] }, 'workflow_dispatch', true],
    ['{one_of} refuses an unlisted value', { one_of: ['push'] }, 'pull_request_target', false],
    ['{one_of} coerces numbers', { one_of: [1, 2] }, '2', true],
    ['{contains} finds a value in a list claim', { contains: 'admins' }, ['devs', 'admins'], true],
    ['{contains} misses a value absent from the list', { contains: 'admins' }, ['devs'], false],
    ['{contains} with a list needs every value', { contains: ['hwk', 'mfa'] }, ['hwk', 'mfa', 'pwd'], true],
    ['{contains} with a list fails when one is absent', { contains: ['hwk', 'mfa'] }, ['pwd', 'mfa'], false],
    ['{contains} takes a single-valued claim as a list of one', { contains: 'admins' }, 'admins', true],
    ['{contains} is element equality, not substring', { contains: 'admin' }, ['admins'], false],
    ['{not_one_of} accepts a value not listed', { not_one_of: ['pull_request_target'] }, 'push', true],
    ['{not_one_of} refuses a listed value', { not_one_of: ['pull_request_target'] }, 'pull_request_target', false],
    ['{not_one_of} refuses a list holding a listed value', { not_one_of: ['contractors'] }, ['staff', 'contractors'], false],
  ];

  it.each(cases)('%s', (_what, condition, value, matches) => {
    expect(compileCondition('claim', condition).test(value)).toBe(matches);
  });

  it.each<[string, ConditionConfig]>([
    ['equality', 'x'],
    ['glob', { glob: '**' }],
    ['one_of', { one_of: ['x'] }],
    ['contains', { contains: 'x' }],
    ['not_one_of', { not_one_of: ['x'] }],
  ])('a missing claim fails %s', (_what, condition) => {
    const failure = firstFailingCondition(compileWhen({ team: condition }), { other: 'x' });
    expect(failure).toMatchObject({ field: 'team', actual: '(missing)', expected: condition });
    expect(failure?.message).toBe(`claim team was missing, expected ${compileCondition('team', condition).describe}`);
  });

  it('reads only own claims, so inherited names like constructor are missing', () => {
    expect(firstFailingCondition(compileWhen({ constructor: { glob: '**' } }), {})).toMatchObject({ actual: '(missing)' });
  });

  it('reports the first failing condition in written order, with expected and actual', () => {
    const conditions = compileWhen({ repository: 'acme/app', ref: 'refs/heads/main', event_name: 'push' });
    const failure = firstFailingCondition(conditions, { repository: 'acme/app', ref: 'refs/heads/feature', event_name: 'pull_request' });
    expect(failure).toEqual({
      condition: 'when.ref',
      field: 'ref',
      expected: 'refs/heads/main',
      actual: 'refs/heads/feature',
      message: 'claim ref was refs/heads/feature, expected refs/heads/main',
    });
  });

  it('says how a glob and a list condition read', () => {
    expect(firstFailingCondition(compileWhen({ repository: { glob: 'acme/*' } }), { repository: 'evil/app' })?.message).toBe(
      'claim repository was evil/app, expected a match for acme/*',
    );
    expect(firstFailingCondition(compileWhen({ amr: { contains: ['hwk', 'mfa'] } }), { amr: ['pwd'] })?.message).toBe(
      'claim amr was [pwd], expected a list containing hwk and mfa',
    );
  });

  it('hints at contains when an equality meets a list claim', () => {
    expect(firstFailingCondition(compileWhen({ groups: 'admins' }), { groups: ['admins'] })?.message).toMatch(/use contains/);
  });

  it('compiles globs to anchored expressions with no other syntax', () => {
    expect(compileGlob('acme/*').source).toBe('^acme\\/[^/]*$');
    expect(compileGlob('a.b(c)|d').test('a.b(c)|d')).toBe(true);
    expect(compileGlob('a.b(c)|d').test('axb')).toBe(false);
  });
});
