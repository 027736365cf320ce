import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestOidcIssuer } from './oidc-issuer.js';
import { githubIssuer } from './broker.js';

/** The runner's file-command files of one step, created empty in `dir` (`<name>.env`, `.output`, `.state`). */
export function stepFiles(dir: string, name: string): { GITHUB_ENV: string; GITHUB_OUTPUT: string; GITHUB_STATE: string } {
  const files = { GITHUB_ENV: join(dir, `${name}.env`), GITHUB_OUTPUT: join(dir, `${name}.output`), GITHUB_STATE: join(dir, `${name}.state`) };
  for (const file of Object.values(files)) writeFileSync(file, '');
  return files;
}

/**
 * The environment GitHub's runner gives a step of the latchkey action: its
 * file commands, the OIDC token request variables (a local stand-in for
 * ACTIONS_ID_TOKEN_REQUEST_URL), the broker's URL and audience, revoke on
 * exit, and the step's own inputs (`INPUT_<NAME>`).
 */
export function actionStepEnv(options: {
  dir: string;
  files: Record<'GITHUB_ENV' | 'GITHUB_OUTPUT' | 'GITHUB_STATE', string>;
  tokens: { url: string; requestToken: string };
  broker: { url: string; audience: string };
  inputs: Record<string, string>;
}): Record<string, string> {
  return {
    ...options.files,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: options.dir,
    ACTIONS_ID_TOKEN_REQUEST_URL: options.tokens.url,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: options.tokens.requestToken,
    'INPUT_BROKER-URL': options.broker.url,
    INPUT_AUDIENCE: options.broker.audience,
    'INPUT_REVOKE-ON-EXIT': 'true',
    ...options.inputs,
  };
}

/**
 * A broker policy for CI jobs of repository 74 on main: a read login to
 * demo.orders in `database` (target `warehouse`, admin URL from
 * `adminUrlEnv`) and a client certificate from target `mesh`.
 */
export function ciWarehouseAndMesh(gh: TestOidcIssuer, options: { database: string; adminUrlEnv: string; markerRole: string }): Record<string, unknown> {
  const { database, adminUrlEnv, markerRole } = options;
  return {
    issuers: [githubIssuer(gh)],
    targets: {
      warehouse: { kind: 'postgres', admin_url_env: adminUrlEnv, sslmode: 'disable', databases: [database], tables: ['demo.*'], marker_role: markerRole },
      mesh: { kind: 'certificate', trust_domain: 'example.org' },
    },
    rules: [
      {
        name: 'ci',
        issuer: 'gh',
        when: { repository_id: '74', ref: 'refs/heads/main' },
        allow: [
          { kind: 'postgres', target: 'warehouse', databases: [database], tables: ['demo.orders'] },
          { kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' },
        ],
      },
    ],
  };
}
