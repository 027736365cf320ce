import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { callApi, githubIssuer, startTestBroker } from '../support/broker.js';

// SIGTERM while grants are in flight: every credential handed out has its audit record.
describe('graceful shutdown', () => {
  it('finishes in-flight grants, records each, and then refuses new connections', async () => {
    const t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [{ name: 'r', issuer: 'gh', when: { repository_id: '74' }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' }] }],
      }),
    });
    const tokens = await Promise.all(Array.from({ length: 24 }, () => t.issuer.githubToken()));
    const answers = tokens.map((token) =>
      callApi(t.url, 'POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } }).catch((err: Error) => err),
    );
    // Close once the broker is working on them (a grant row exists), not after a guessed delay.
    for (let waited = 0; waited < 10_000; waited += 5) {
      const rows = await t.broker.context.db.query<{ n: number }>('SELECT count(*)::int AS n FROM grants');
      if ((rows.rows[0]?.n ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const closing = t.broker.close();
    const settled = await Promise.all(answers);
    await closing;

    const issued = settled.filter((a) => !(a instanceof Error) && a.status === 201) as { body: { id: string } }[];
    expect(issued.length).toBeGreaterThan(0);
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    try {
      const active = await client.query<{ id: string }>("SELECT id FROM grants WHERE status = 'active'");
      const recorded = await client.query<{ grant_id: string }>("SELECT grant_id FROM audit_events WHERE type = 'grant.issued'");
      const withRecord = new Set(recorded.rows.map((r) => r.grant_id));
      // No credential without its audit record, whatever the timing.
      for (const row of active.rows) expect(withRecord.has(row.id)).toBe(true);
      for (const answer of issued) expect(withRecord.has(answer.body.id)).toBe(true);
    } finally {
      await client.end();
    }
    await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
    await t.close();
  });
});
