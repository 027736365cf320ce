import { describe, expect, it } from 'vitest';
import { makeRoleName } from '../../../src/providers/postgres/role-name.js';

const random = Buffer.from('a1b2c3d4e5f6', 'hex');

describe('role names', () => {
  it.each([
    ['user:ada@example.com', 'lk_user_ada_example_com_a1b2c3d4e5f6'],
    ['repo:acme/api:ref:refs/heads/main', 'lk_repo_acme_api_ref_refs_heads_main_a1b2c3d4e5f6'],
    ['Zoë Ångström', 'lk_zoe_angstrom_a1b2c3d4e5f6'],
    ['"; DROP ROLE postgres; --', 'lk_drop_role_postgres_a1b2c3d4e5f6'],
    ['日本語', 'lk_grant_a1b2c3d4e5f6'],
    ['', 'lk_grant_a1b2c3d4e5f6'],
  ])('%j becomes %s', (subject, expected) => {
    expect(makeRoleName('lk_', subject, random)).toBe(expected);
  });

  it('stays within 63 bytes of [a-z0-9_] for any subject and prefix', () => {
    const name = makeRoleName('a_twenty_char_prefix', 'x'.repeat(500), random);
    expect(name).toHaveLength(63);
    expect(name).toMatch(/^a_twenty_char_prefixx+_a1b2c3d4e5f6$/);
    expect(makeRoleName('lk_', `${'a'.repeat(46)}__b`, random)).toMatch(/^lk_a{46}_a1b2c3d4e5f6$/);
  });

  it('differs between two grants of one subject', () => {
    expect(makeRoleName('lk_', 'ada')).not.toBe(makeRoleName('lk_', 'ada'));
  });
});
