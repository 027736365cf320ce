import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// A GitHub rule that any branch of its repository meets, for a target marked production.
describe('policy lint at start-up', () => {
  let t: TestBroker;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { warehouse: { kind: 'certificate', trust_domain: 'example.org', production: true } },
        rules: [
          {
            name: 'octo-repo-certs',
            issuer: 'gh',
            when: { repository_id: '74', repository_owner_id: '65', event_name: 'push', runner_environment: 'github-hosted' },
            allow: [{ kind: 'certificate', target: 'warehouse', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' }],
          },
        ],
      }),
      broker: { logger: pino({ level: 'warn' }, sink) },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('logs each warning with the rule, the finding code and the path, and still starts', async () => {
    const warning = lines.find((l) => l['code'] === 'github-production-unpinned');
    expect(warning).toMatchObject({
      level: 40,
      rule: 'octo-repo-certs',
      path: 'rules[0]',
      msg: 'policy: target warehouse is marked production but no ref or environment condition pins it: any branch of the repository can get it',
    });
    expect((await t.call('GET', '/readyz')).status).toBe(200);
  });
});
