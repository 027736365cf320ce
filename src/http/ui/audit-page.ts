import { Router } from 'express';
import type { AppContext } from '../context.js';
import { AUDIT_PAGE_SCRIPT } from './audit-script.js';

/**
 * The auditor page at /ui/audit: plain HTML, CSS and one script served as a
 * separate file, so the Content-Security-Policy allows no inline script at all.
 * Everything it shows comes from the auditor API with the pasted token.
 */

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const AUDIT_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>latchkey · audit log</title>
<link rel="stylesheet" href="/ui/audit/app.css">
<script src="/ui/audit/app.js" defer></script>
</head>
<body>
<header>
  <h1>latchkey audit log</h1>
  <p id="integrity" role="status" aria-live="polite" data-state="unknown">Integrity: not checked yet</p>
</header>
<main>
  <section id="signin" aria-labelledby="signin-title">
    <h2 id="signin-title">Sign in</h2>
    <form id="signin-form">
      <label for="token">Auditor token (kept in this tab only)</label>
      <textarea id="token" rows="3" autocomplete="off" spellcheck="false" required></textarea>
      <button type="submit">Sign in</button>
      <button type="button" id="signout">Sign out</button>
    </form>
    <p id="signin-error" role="alert"></p>
  </section>

  <section id="history" aria-labelledby="history-title" hidden>
    <h2 id="history-title">Grant history</h2>
    <form id="filters">
      <div><label for="f-subject">Subject</label><input id="f-subject" name="subject"></div>
      <div><label for="f-repository">Repository</label><input id="f-repository" name="repository"></div>
      <div><label for="f-target">Target</label><input id="f-target" name="target"></div>
      <div><label for="f-kind">Kind</label>
        <select id="f-kind" name="kind"><option value="">any</option><option>postgres</option><option>aws</option><option>certificate</option></select></div>
      <div><label for="f-outcome">Outcome</label>
        <select id="f-outcome" name="outcome"><option value="">any</option><option>success</option><option>denied</option><option>error</option><option>intent</option></select></div>
      <div><label for="f-from">From</label><input id="f-from" name="from" type="datetime-local"></div>
      <div><label for="f-to">To</label><input id="f-to" name="to" type="datetime-local"></div>
      <div class="actions"><button type="submit">Apply filters</button></div>
    </form>
    <p id="count" role="status" aria-live="polite"></p>
    <figure id="chart-figure">
      <figcaption id="chart-title">Grants per hour, by kind and outcome</figcaption>
      <div id="chart"></div>
    </figure>
    <div class="table-wrap">
    <table id="events">
      <caption>Events, newest first</caption>
      <thead><tr>
        <th scope="col">Seq</th><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Outcome</th>
        <th scope="col">Subject</th><th scope="col">Kind</th><th scope="col">Target</th><th scope="col">Grant</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    </div>
    <button type="button" id="more" hidden>Load older events</button>
  </section>

  <section id="detail" aria-labelledby="detail-title" hidden tabindex="-1">
    <h2 id="detail-title">Grant</h2>
    <button type="button" id="detail-close">Back to the history</button>
    <dl id="detail-facts"></dl>
    <h3>Timeline</h3>
    <ol id="detail-timeline"></ol>
    <h3>Claims</h3>
    <pre id="detail-claims"></pre>
    <h3>Scope</h3>
    <pre id="detail-scope"></pre>
  </section>
</main>
</body>
</html>
`;

export const AUDIT_PAGE_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 1200px; padding: 1rem; line-height: 1.4; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 1rem; }
h1 { font-size: 1.4rem; margin: 0; }
#integrity { padding: .3rem .6rem; border-radius: .3rem; border: 1px solid var(--muted); }
#integrity[data-state="verified"] { border-color: var(--ok); color: var(--ok); }
#integrity[data-state="failed"] { border-color: var(--bad); color: var(--bad); }
label { display: block; font-size: .85rem; font-weight: 600; }
textarea, input, select { font: inherit; width: 100%; box-sizing: border-box; }
#signin-form { display: grid; gap: .4rem; max-width: 40rem; }
#filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: .5rem; align-items: end; }
button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .4rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
td.outcome-denied, td.outcome-error { color: var(--bad); }
td.outcome-success { color: var(--ok); }
#chart svg { width: 100%; height: auto; max-height: 220px; }
#chart .legend { display: flex; flex-wrap: wrap; gap: .8rem; font-size: .8rem; list-style: none; padding: 0; }
#chart .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
pre { background: rgba(127,127,127,.12); padding: .5rem; overflow-x: auto; }
#signin-error { color: var(--bad); }
`;

/** Routes of the auditor page; mounted at /ui/audit. No token is needed to load the page itself. */
export function auditUiRoutes(_ctx: AppContext): Router {
  const router = Router();
  router.use((_req, res, next) => {
    res.set('content-security-policy', CSP);
    res.set('cache-control', 'no-cache');
    next();
  });
  router.get('/', (_req, res) => {
    res.type('text/html; charset=utf-8').send(AUDIT_PAGE_HTML);
  });
  router.get('/app.js', (_req, res) => {
    res.type('text/javascript; charset=utf-8').send(AUDIT_PAGE_SCRIPT);
  });
  router.get('/app.css', (_req, res) => {
    res.type('text/css; charset=utf-8').send(AUDIT_PAGE_CSS);
  });
  return router;
}
