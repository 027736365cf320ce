// The ceiling for certificate grants on this machine: a bare node:http server
// in its own process doing only the cryptography a grant cannot skip, with
// Node's synchronous crypto. Per POST: parse the JSON body, check the bearer
// token's ES256 signature against the issuer's key, sign a TBS of the real
// certificate's size with the CA key, and answer JSON of the broker's answer
// size. No claims, policy, CSR check, database or audit: what latchkey does on
// top of this is what a grant costs beyond the floor.
// Receives { issuerJwk, caKeyPem, tbsBytes, answerBytes } over IPC and answers
// { url, pid }; closes on { close: true }.
import { createPrivateKey, createPublicKey, randomUUID, sign, verify } from 'node:crypto';
import { createServer } from 'node:http';

process.once('message', async ({ issuerJwk, caKeyPem, tbsBytes, answerBytes }) => {
  try {
    const issuerKey = createPublicKey({ key: issuerJwk, format: 'jwk' });
    const caKey = createPrivateKey(caKeyPem);
    const tbs = Buffer.alloc(tbsBytes, 0x5a);
    const padding = 'A'.repeat(Math.max(0, answerBytes - 200));
    const refuse = (res, status) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{"code":"refused"}');
    };
    const server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => {
        try {
          JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
          const dot = token.lastIndexOf('.');
          const ok = dot > 0 && verify('sha256', Buffer.from(token.slice(0, dot)), { key: issuerKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(token.slice(dot + 1), 'base64url'));
          if (!ok) return refuse(res, 401);
          const signature = sign('sha256', tbs, caKey).toString('base64');
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: randomUUID(), credential: { signature, certificate: padding } }));
        } catch {
          refuse(res, 400);
        }
      });
    });
    await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
    process.on('message', (message) => {
      if (!message?.close) return;
      server.closeAllConnections();
      server.close(() => process.send({ closed: true }, () => process.exit(0)));
    });
    process.send({ url: `http://127.0.0.1:${server.address().port}`, pid: process.pid });
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
  }
});
