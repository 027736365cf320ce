// The post step of the latchkey GitHub Action: revokes the grants the main
// step received (`latchkey revoke <grant-id>`), so PostgreSQL logins are
// dropped and certificates revoked when the job ends instead of when they
// expire. AWS grants are marked revoked too, though STS credentials cannot be
// revoked one by one and stay valid until they expire (at most 15 minutes).
// A failed revocation is a warning: the broker still expires the grant.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'latchkey.js');

function post() {
  if ((process.env['INPUT_REVOKE-ON-EXIT'] ?? 'true').trim().toLowerCase() === 'false') {
    process.stdout.write('latchkey: revoke-on-exit is false; the grants expire on their own\n');
    return;
  }
  const ids = (process.env.STATE_grant_ids ?? '').split(/\s+/).filter(Boolean);
  const brokerUrl = process.env.STATE_broker_url ?? (process.env['INPUT_BROKER-URL'] ?? '').trim();
  const audience = process.env.STATE_audience ?? ((process.env.INPUT_AUDIENCE ?? '').trim() || 'latchkey');
  if (ids.length === 0) {
    process.stdout.write('latchkey: no grants to revoke\n');
    return;
  }
  const env = { ...process.env, LATCHKEY_URL: brokerUrl, LATCHKEY_AUDIENCE: audience };
  delete env.LATCHKEY_TOKEN;
  for (const id of ids) {
    const result = spawnSync(process.execPath, [bin, 'revoke', id, '--url', brokerUrl], { cwd: root, env, stdio: 'inherit' });
    if (result.status !== 0) {
      process.stdout.write(`::warning title=latchkey::could not revoke grant ${id} (exit ${result.status ?? result.error?.message}); it still expires on its own\n`);
    }
  }
}

post();
