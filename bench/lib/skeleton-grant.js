// The floor under an AWS grant on this machine: a bare node:http server in its
// own process doing only the steps a grant cannot skip, in the broker's order,
// with the libraries the broker uses. Per POST: burn the token's jti (committed
// without waiting for the WAL flush, as the broker does: the intent's flush
// covers it), commit the intent, AssumeRole through @aws-sdk/client-sts,
// commit the result (both synchronous_commit on), answer the credentials as
// JSON. No token verification, policy, validation, hash chain, metrics or logging.
// Receives { databaseUrl, stsUrl } over IPC and answers { url, pid }; closes on
// { close: true }. The broker's AWS identity comes from this process's environment.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import pg from 'pg';

process.once('message', async ({ databaseUrl, stsUrl, roleArn }) => {
  try {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    const statePool = new pg.Pool({ connectionString: databaseUrl, max: 4, options: '-c synchronous_commit=off' });
    await pool.query('CREATE TABLE IF NOT EXISTS skeleton_jti (jti text PRIMARY KEY)');
    await pool.query('CREATE TABLE IF NOT EXISTS skeleton_events (id bigserial PRIMARY KEY, body jsonb NOT NULL)');
    const sts = new STSClient({ region: 'eu-west-1', endpoint: stsUrl });
    const server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', async () => {
        try {
          const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const grantId = randomUUID();
          await statePool.query({ name: 'jti', text: 'INSERT INTO skeleton_jti (jti) VALUES ($1)', values: [randomUUID()] });
          await pool.query({ name: 'event', text: 'INSERT INTO skeleton_events (body) VALUES ($1)', values: [JSON.stringify({ type: 'grant.intent', grantId, request })] });
          const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'repo-acme-app-environment-prod', SourceIdentity: 'repo-acme-app-environment-prod', DurationSeconds: 900 }));
          await pool.query({ name: 'event', text: 'INSERT INTO skeleton_events (body) VALUES ($1)', values: [JSON.stringify({ type: 'grant.issued', grantId, accessKeyId: out.Credentials?.AccessKeyId })] });
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: grantId, credential: out.Credentials }));
        } catch (err) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        }
      });
    });
    await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
    process.on('message', async (message) => {
      if (!message?.close) return;
      server.closeAllConnections();
      server.close();
      sts.destroy();
      await pool.end().catch(() => {});
      await statePool.end().catch(() => {});
      process.send({ closed: true }, () => process.exit(0));
    });
    process.send({ url: `http://127.0.0.1:${server.address().port}`, pid: process.pid });
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
  }
});
