import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { scramSha256Verifier } from '../../../src/providers/postgres/scram.js';
import { Secret } from '../../../src/secret.js';
import { LOCAL_PG15_URL, adminQuery, unreachableReason } from './servers.js';

describe('SCRAM-SHA-256 verifiers', () => {
  it.for<[server: string, url: () => string]>([
    ['embedded PostgreSQL 18', () => inject('postgresUrl')],
    ['the machine PostgreSQL 15', () => LOCAL_PG15_URL],
  ])('match what %s stores for the same password and salt', async ([, url], ctx) => {
    const reason = await unreachableReason(url());
    if (reason) ctx.skip(reason);
    const role = `lk_scram_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(32).toString('base64url');
    await adminQuery(url(), `SET password_encryption = 'scram-sha-256'; CREATE ROLE ${role} PASSWORD '${password}'`);
    try {
      const stored = (await adminQuery(url(), 'SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0].rolpassword as string;
      const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
      const ours = await scramSha256Verifier(new Secret(password), { salt: Buffer.from(salt!, 'base64'), iterations: Number(iterations) });
      expect(ours).toBe(stored);
    } finally {
      await adminQuery(url(), `DROP ROLE ${role}`);
    }
  });

  it.each([4096, 1])('lets the password sign in to a SCRAM server when stored as a verifier of %i iterations', async (iterations) => {
    const url = inject('postgresUrl');
    const role = `lk_scram_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(32).toString('base64url');
    const verifier = await scramSha256Verifier(new Secret(password), { iterations });
    await adminQuery(url, `CREATE ROLE ${role} LOGIN PASSWORD '${verifier}'`);
    try {
      const login = new URL(url);
      login.username = role;
      login.password = password;
      expect((await adminQuery(login.toString(), 'SELECT current_user AS who')).rows).toEqual([{ who: role }]);
      login.password = `${password}x`;
      await expect(adminQuery(login.toString(), 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await adminQuery(url, `DROP ROLE ${role}`);
    }
  });

  it('uses 4096 iterations and a fresh 16-byte salt each time', async () => {
    const a = await scramSha256Verifier(new Secret('pencil'));
    const b = await scramSha256Verifier(new Secret('pencil'));
    expect(a).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
  });

  it('refuses a password SASLprep would change (a bug: latchkey makes ASCII passwords)', async () => {
    await expect(scramSha256Verifier(new Secret('p\u00e4ss'))).rejects.toThrow(TypeError);
  });
});
