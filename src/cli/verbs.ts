import { registerVerb } from './main.js';

// One line per verb: name, one-line summary, the file that implements it.
registerVerb('dev', 'start a development broker: embedded PostgreSQL, dev CA, dev token issuer, sample policy', async () => (await import('./dev.js')).run);
registerVerb('serve', 'start the broker in production mode (--config FILE)', async () => (await import('./serve.js')).run);
registerVerb('migrate', 'apply the database schema migrations and exit (--database-url-file PATH | --config FILE; run as the owner role)', async () => (await import('./migrate.js')).run);
registerVerb('login', 'sign in through the company SSO in the browser; later commands use it (--issuer NAME --no-browser)', async () => (await import('./login.js')).run);
registerVerb('logout', 'forget this laptop\'s sign-in and revoke its refresh token at the IdP', async () => (await import('./logout.js')).run);
registerVerb('token', 'mint a development token from a running `latchkey dev` (--claim k=v)', async () => (await import('./token.js')).run);
registerVerb('grant cert', 'get a short-lived mTLS certificate (--target T --csr FILE|--generate --out DIR)', async () => (await import('./grant-cert.js')).run);
registerVerb('grant postgres', 'get a short-lived PostgreSQL login (--target T --database D --table s.t [--exec psql])', async () => (await import('./grant-postgres.js')).run);
registerVerb('explain', 'show what the policy decides for a request, and why', async () => (await import('./explain.js')).run);
registerVerb('revoke', 'revoke a grant now (GRANT_ID)', async () => (await import('./grants.js')).revoke);
registerVerb('status', 'show a grant (GRANT_ID)', async () => (await import('./grants.js')).status);
registerVerb('grants', 'list your grants', async () => (await import('./grants.js')).list);
registerVerb('pending', 'list grants waiting for approval (approver role)', async () => (await import('./grants.js')).pending);
registerVerb('whoami', 'show the identity and roles the broker sees in your token', async () => (await import('./grants.js')).whoami);
registerVerb('approve', 'approve a pending grant (GRANT_ID; approver role)', async () => (await import('./grants.js')).approve);
registerVerb('deny', 'deny a pending grant (GRANT_ID; approver role)', async () => (await import('./grants.js')).deny);
registerVerb('policy lint', 'check a policy file for risky rules', async () => (await import('./policy-lint.js')).run);
registerVerb('grant aws', 'get AWS credentials for a role (--target T --role R | --claim ID) [--format env|json|credential-process|github]', async () => (await import('./grant-aws.js')).run);
registerVerb('credential-process', 'print AWS credentials as the credential_process JSON (for ~/.aws/config)', async () => (await import('./credential-process.js')).run);
registerVerb('aws revoke-sessions', 'deny every session of an AWS role issued before now (--target T --role R; admin)', async () => (await import('./aws-revoke-sessions.js')).run);
registerVerb('audit list', 'list audit events (--subject, --repository, --target, --grant-id, --from/--to, ...; auditor role)', async () => (await import('./audit-list.js')).run);
registerVerb('audit export', 'export audit events as JSONL or CSV (--out FILE --checkpoint-out FILE; auditor role)', async () => (await import('./audit-export.js')).run);
registerVerb('audit verify', 'verify an audit export offline (--export FILE --checkpoint FILE --key KEY [--since FILE])', async () => (await import('./audit-verify.js')).run);
registerVerb('audit key', 'print the public key that verifies audit checkpoints', async () => (await import('./audit-key.js')).run);
