// A minimal OIDC issuer on 127.0.0.1 for the verification benchmark: a
// discovery document and a JWKS with one ES256 and one RS256 key, and a
// `mint(alg)` that signs GitHub-sized tokens with jose.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const BENCH_AUDIENCE = 'latchkey-bench';

/** Starts the issuer; `close()` stops it. */
export async function startBenchIssuer() {
  const keys = {};
  const jwks = [];
  for (const alg of ['ES256', 'RS256']) {
    const pair = await generateKeyPair(alg, { extractable: true });
    const kid = `bench-${alg.toLowerCase()}`;
    keys[alg] = { ...pair, kid };
    jwks.push({ ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' });
  }
  let url = '';
  const server = createServer((req, res) => {
    const send = (body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send({ issuer: url, jwks_uri: `${url}/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256', 'RS256'] });
    } else if (req.url === '/jwks') {
      send({ keys: jwks });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${server.address().port}`;

  return {
    url,
    audience: BENCH_AUDIENCE,
    /** Public KeyObject-compatible CryptoKeys, for the raw-crypto baseline. */
    publicKey: (alg) => keys[alg].publicKey,
    /** A token shaped like a GitHub Actions one (about the same claims and size). */
    async mint(alg, claims = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        sub: 'repo:acme/app:environment:prod',
        repository: 'acme/app',
        repository_id: '74',
        repository_owner: 'acme',
        repository_owner_id: '65',
        ref: 'refs/heads/main',
        environment: 'prod',
        event_name: 'push',
        workflow: 'deploy',
        runner_environment: 'github-hosted',
        ...claims,
      })
        .setProtectedHeader({ alg, kid: keys[alg].kid, typ: 'JWT' })
        .setIssuer(url)
        .setAudience(BENCH_AUDIENCE)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 900)
        .setJti(randomUUID())
        .sign(keys[alg].privateKey);
    },
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}
