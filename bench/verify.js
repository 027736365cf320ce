// Section 1: token verification. latchkey's verifier (jose, cached key set)
// next to Node's raw crypto.verify of the same token, and the WebCrypto call
// jose makes underneath, measured in alternating slices, so jose's own cost is measured, not guessed.
import { KeyObject, verify as cryptoVerify, webcrypto } from 'node:crypto';
import { startBenchIssuer } from './lib/issuer.js';
import { interleavedOpsPerSecond, round } from './lib/stats.js';

const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);

/** What the raw baselines need from a compact JWS: the signed bytes and the signature. */
function splitToken(token) {
  const [header, payload, signature] = token.split('.');
  return { data: Buffer.from(`${header}.${payload}`), signature: Buffer.from(signature, 'base64url') };
}

/**
 * Measures verification for ES256 and RS256. `databaseUrl` is a migrated
 * database for the replay store (consume: true). Returns table rows.
 */
export async function runVerifyBench({ databaseUrl, log = () => {} }) {
  const { createIdentityVerifier } = await dist('identity/verifier.js');
  const { PostgresReplayStore } = await dist('identity/replay-store.js');
  const { Database } = await dist('store/database.js');
  const { systemClock } = await dist('clock.js');

  const issuer = await startBenchIssuer();
  const db = new Database(databaseUrl, 10);
  const rows = [];
  try {
    const verifier = createIdentityVerifier({
      issuers: [{ name: 'bench', issuer: issuer.url, audience: issuer.audience, allow_insecure_http: true, max_token_age: 3600, leeway: 30, subject_claim: 'sub', single_use_jti: true }],
      clock: systemClock,
      replay: new PostgresReplayStore(db, systemClock),
    });
    if (!(await verifier.ready())) throw new Error('bench issuer keys did not load');

    for (const alg of ['ES256', 'RS256']) {
      const token = await issuer.mint(alg);
      const { data, signature } = splitToken(token);
      const publicKey = KeyObject.from(issuer.publicKey(alg));
      const keyInput = alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey;
      if (!cryptoVerify('sha256', data, keyInput, signature)) throw new Error(`${alg}: baseline signature does not verify`);
      const webAlgorithm = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
      const cryptoKey = issuer.publicKey(alg);

      log(`verify ${alg}: crypto.verify, WebCrypto, latchkey consume:false (interleaved)`);
      // Alternating slices: the shared machine's noise falls on all three alike.
      // The raw check includes splitting and base64url-decoding, as any verifier must.
      const rates = await interleavedOpsPerSecond({
        raw: () => {
          const parts = splitToken(token);
          cryptoVerify('sha256', parts.data, keyInput, parts.signature);
        },
        web: () => webcrypto.subtle.verify(webAlgorithm, cryptoKey, signature, data),
        ours: () => verifier.verify(token, { consume: false }),
      });
      const { raw, web, ours } = rates;

      // consume:true burns each jti in PostgreSQL: fresh tokens, 16 verifications in flight.
      log(`verify ${alg}: latchkey consume:true`);
      const tokens = [];
      for (let i = 0; i < 2000; i += 1) tokens.push(await issuer.mint(alg));
      let next = 0;
      const deadline = performance.now() + 3000;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < tokens.length && performance.now() < deadline) {
            await verifier.verify(tokens[next++], { consume: true });
          }
        }),
      );
      const consumed = (next / (performance.now() - started)) * 1000;

      rows.push(
        { name: `${alg} Node crypto.verify (baseline, sync)`, value: round(raw), unit: 'ops/s', ratio: '1.00' },
        { name: `${alg} WebCrypto subtle.verify (what jose calls)`, value: round(web), unit: 'ops/s', ratio: (web / raw).toFixed(2) },
        { name: `${alg} latchkey verify, consume:false`, value: round(ours), unit: 'ops/s', ratio: (ours / raw).toFixed(2) },
        { name: `${alg} latchkey verify, consume:true (PG replay, 16 in flight)`, value: round(consumed), unit: 'ops/s', ratio: (consumed / raw).toFixed(2) },
      );
      rows.push({ name: `${alg} latchkey cost above crypto.verify`, value: round(1e6 / ours - 1e6 / raw), unit: 'µs/token', ratio: '' });
    }
  } finally {
    await db.close();
    await issuer.close();
  }
  return rows;
}
