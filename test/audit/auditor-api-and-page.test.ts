import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditExport } from '../../src/audit/verify.js';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';

// A broker whose GitHub deploy job of octo-org/octo-repo may get certificates,
// and whose SSO group "auditors" reads the audit log.
describe('the auditor API and page', () => {
  let t: TestBroker;
  let sso: TestOidcIssuer;
  let auditorToken: string;
  let grantIds: string[] = [];

  beforeAll(async () => {
    sso = await TestOidcIssuer.start();
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh), { name: 'sso', issuer: sso.url, audience: sso.audience, allow_insecure_http: true, subject_claim: 'email' }],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          {
            name: 'octo-repo-deploys',
            issuer: 'gh',
            when: { repository_id: '74', ref: 'refs/heads/main' },
            allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}', max_ttl: '10m' }],
          },
        ],
        roles: {
          admin: [{ issuer: 'sso', when: { groups: { contains: 'admins' } } }],
          auditor: [{ issuer: 'sso', when: { groups: { contains: 'auditors' } } }],
        },
      }),
    });
    for (let i = 0; i < 3; i += 1) {
      const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
      expect(res.status).toBe(201);
      grantIds.push(res.body.id as string);
    }
    const denied = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken({ ref: 'refs/heads/feature' }), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(denied.status).toBe(403);
    auditorToken = await sso.ssoToken({ groups: ['auditors'] });
  });
  afterAll(async () => {
    await t?.close();
    await sso?.close();
  });

  it('serves the verifier key to anyone, and the log only to auditors', async () => {
    const key = await t.call('GET', '/v1/audit/key');
    expect(key.status).toBe(200);
    expect(key.body.verifierKey).toMatch(/^\S+\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    const asJob = await t.call('GET', '/v1/audit/events', { token: await t.issuer.githubToken() });
    expect(asJob.status).toBe(403);
    expect(asJob.body.code).toBe('forbidden');
    const anonymous = await t.call('GET', '/v1/audit/events');
    expect(anonymous.status).toBe(401);
  });

  it('records each read of the log as an audit event', async () => {
    const first = await t.call('GET', '/v1/audit/events?type=audit.read', { token: auditorToken });
    const second = await t.call('GET', '/v1/audit/events?type=audit.read', { token: auditorToken });
    expect(second.body.events.length).toBe(first.body.events.length + 1);
    expect(second.body.events.at(-1)).toMatchObject({ type: 'audit.read', subject: expect.stringContaining('@'), details: { what: 'events' } });
  });

  it('exports a log that verifies offline against the served checkpoint and key', async () => {
    const checkpoint = await t.call('GET', '/v1/audit/checkpoint', { token: auditorToken });
    expect(checkpoint.status).toBe(200);
    const exported = await fetch(`${t.url}/v1/audit/export?format=jsonl&size=${checkpoint.body.treeSize}`, { headers: { authorization: `Bearer ${auditorToken}` } });
    expect(exported.headers.get('content-type')).toMatch(/jsonl/);
    const key = await t.call('GET', '/v1/audit/key');
    const jsonl = Buffer.from(await exported.text());
    const report = await verifyAuditExport({
      events: (async function* () {
        yield jsonl;
      })(),
      checkpoint: checkpoint.body.note,
      key: key.body.verifierKey,
    });
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    const proof = await t.call('GET', `/v1/audit/proof/consistency?from=2&to=${checkpoint.body.treeSize}`, { token: auditorToken });
    expect(proof.status).toBe(200);
    const bad = await t.call('GET', '/v1/audit/proof/inclusion?seq=999999', { token: auditorToken });
    expect(bad.status).toBe(400);
  });

  describe('in headless Chromium', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      });
    });
    afterAll(async () => browser?.close());

    it('loads, filters by subject, opens a grant, and shows the log as verified', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const violations: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') violations.push(m.text());
      });
      await page.goto(`${t.url}/ui/audit`);
      await page.getByLabel('Auditor token (kept in this tab only)').fill(auditorToken);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expectText(page.locator('#integrity'), /log verified/);

      const grantSubject = (await t.call('GET', `/v1/audit/events?grantId=${grantIds[0]}`, { token: auditorToken })).body.events[0].subject as string;
      await page.getByLabel('Subject').fill(grantSubject);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.waitForFunction((s) => {
        const cells = [...document.querySelectorAll('#events tbody tr td:nth-child(5)')];
        return cells.length > 0 && cells.every((c) => c.textContent === s);
      }, grantSubject);
      await expectText(page.locator('#integrity'), /log verified/);
      expect(await page.locator('#chart svg rect').count()).toBeGreaterThan(0);

      await page.getByRole('button', { name: `Open grant ${grantIds[0]}` }).first().click();
      await expectText(page.locator('#detail-title'), new RegExp(grantIds[0] as string));
      await expectText(page.locator('#detail-facts'), /octo-repo-deploys/);
      expect(await page.locator('#detail-timeline li').count()).toBeGreaterThanOrEqual(2);
      mkdirSync('test-artifacts', { recursive: true });
      await page.screenshot({ path: 'test-artifacts/auditor-page-detail.png', fullPage: true });
      await page.getByRole('button', { name: 'Back to the history' }).click();
      await page.screenshot({ path: 'test-artifacts/auditor-page.png', fullPage: true });
      expect(violations.filter((v) => /Content Security Policy/i.test(v))).toEqual([]);
    });
  });
});

/** The page's DOM, for the callbacks that Playwright runs inside Chromium (src/ is compiled without the DOM lib). */
declare const document: { querySelectorAll(selector: string): Iterable<{ readonly textContent: string | null }> };

async function expectText(locator: import('playwright-core').Locator, pattern: RegExp): Promise<void> {
  await locator.filter({ hasText: pattern }).waitFor({ timeout: 15_000 }).catch(async () => {
    throw new Error(`expected ${pattern} but found ${JSON.stringify(await locator.textContent())}`);
  });
}
