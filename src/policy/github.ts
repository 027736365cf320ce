import type { IssuerConfig } from '../config/schema.js';

/** What the policy knows about GitHub Actions tokens: any repository on GitHub can mint one, for any audience. */

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** Claims that name the repository's owner; a rule's visibility in explanations hangs on them. */
export const GITHUB_OWNER_CLAIMS = ['repository_owner', 'repository_owner_id'] as const;

/** Events whose workflows run with the base repository's token on code or input from someone else. */
export const GITHUB_RISKY_EVENTS = ['pull_request_target', 'workflow_run'] as const;

/** An issuer configured with `preset: github`, or pointing at GitHub's issuer URL without the preset. */
export function isGitHubIssuer(issuer: Pick<IssuerConfig, 'preset' | 'issuer'> | undefined): boolean {
  return issuer !== undefined && (issuer.preset === 'github' || issuer.issuer === GITHUB_ACTIONS_ISSUER);
}
