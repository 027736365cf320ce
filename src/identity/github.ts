/**
 * The GitHub Actions preset: the issuer GitHub's workflow tokens come from, the
 * claims they carry, and a reader for their `sub` claim.
 *
 * Any repository on GitHub can mint a token for any audience, so rules must pin
 * the repository; GitHub recommends the immutable `repository_id` and
 * `repository_owner_id`, which survive renames and cannot be re-registered by
 * someone else after a deletion.
 */

/** `iss` of GitHub.com's Actions tokens. GitHub Enterprise Server sets `issuer` in the config instead. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** One documented claim of a GitHub Actions token, for the README and for rule authors. */
export interface GitHubClaim {
  readonly claim: string;
  readonly description: string;
  /** Example value, shaped as GitHub sends it (IDs are strings). */
  readonly example: string;
}

/**
 * The claims of a GitHub Actions OIDC token, in the order GitHub documents
 * them. Numeric IDs arrive as strings; match them as strings in rules.
 */
export const GITHUB_CLAIMS: readonly GitHubClaim[] = [
  { claim: 'iss', description: 'Issuer: always https://token.actions.githubusercontent.com on GitHub.com.', example: GITHUB_ACTIONS_ISSUER },
  { claim: 'aud', description: 'Audience the workflow asked for; must contain the audience configured for the issuer.', example: 'latchkey' },
  { claim: 'sub', description: 'Subject: repository plus context, e.g. repo:OWNER/REPO:environment:NAME (see parseGitHubSubject).', example: 'repo:octo-org/octo-repo:environment:prod' },
  { claim: 'jti', description: 'Unique token id; latchkey accepts it once for credential-issuing calls.', example: '2b9d2c0e-8f59-4bd5-a6e4-1c6b0b3e7f1a' },
  { claim: 'repository', description: 'OWNER/REPO of the repository the workflow runs in (changes on rename).', example: 'octo-org/octo-repo' },
  { claim: 'repository_id', description: 'Immutable numeric id of that repository; prefer it in rules.', example: '74' },
  { claim: 'repository_owner', description: 'User or organisation that owns the repository (changes on rename).', example: 'octo-org' },
  { claim: 'repository_owner_id', description: 'Immutable numeric id of that owner; prefer it in rules.', example: '65' },
  { claim: 'repository_visibility', description: 'public, private or internal.', example: 'private' },
  { claim: 'ref', description: 'Git ref that triggered the run.', example: 'refs/heads/main' },
  { claim: 'ref_type', description: 'branch or tag.', example: 'branch' },
  { claim: 'ref_protected', description: '"true" when branch protection or rulesets apply to the ref.', example: 'true' },
  { claim: 'sha', description: 'Commit SHA the run is for.', example: 'example-sha' },
  { claim: 'environment', description: 'Deployment environment of the job, when it has one (its protection rules ran first).', example: 'prod' },
  { claim: 'event_name', description: 'Event that triggered the run (push, pull_request, workflow_dispatch, ...); pull_request_target and workflow_run run untrusted code with secrets.', example: 'push' },
  { claim: 'head_ref', description: 'Source branch of a pull request (pull_request events only).', example: '' },
  { claim: 'base_ref', description: 'Target branch of a pull request (pull_request events only).', example: '' },
  { claim: 'workflow', description: 'Name of the workflow.', example: 'deploy' },
  { claim: 'workflow_ref', description: 'OWNER/REPO/PATH@REF of the workflow file of the run.', example: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main' },
  { claim: 'workflow_sha', description: 'Commit SHA of that workflow file.', example: 'example-sha' },
  { claim: 'job_workflow_ref', description: 'OWNER/REPO/PATH@REF of the workflow file that defines the job (differs for reusable workflows).', example: 'octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main' },
  { claim: 'job_workflow_sha', description: 'Commit SHA of that job workflow file.', example: 'example-sha' },
  { claim: 'runner_environment', description: 'github-hosted or self-hosted; pin github-hosted unless you trust your runners.', example: 'github-hosted' },
  { claim: 'run_id', description: 'Id of the workflow run.', example: '5029493852' },
  { claim: 'run_number', description: 'Number of the run within the workflow.', example: '10' },
  { claim: 'run_attempt', description: 'Attempt number of the run (re-runs increase it).', example: '1' },
  { claim: 'check_run_id', description: 'Id of the job\'s check run.', example: '13549001024' },
  { claim: 'actor', description: 'Account that started the run (changes on rename).', example: 'octocat' },
  { claim: 'actor_id', description: 'Immutable numeric id of that account.', example: '12' },
  { claim: 'enterprise', description: 'Enterprise slug, for repositories in a GitHub Enterprise Cloud enterprise.', example: 'octo-enterprise' },
  { claim: 'enterprise_id', description: 'Immutable id of that enterprise.', example: '2' },
  { claim: 'iat', description: 'Issued at (seconds since the epoch); older than the issuer\'s max_token_age is refused.', example: '1632493567' },
  { claim: 'nbf', description: 'Not before (seconds since the epoch).', example: '1632492967' },
  { claim: 'exp', description: 'Expiry (seconds since the epoch); GitHub tokens live a few minutes.', example: '1632493867' },
];

/** One `key:value` part of a `sub` after the repository, e.g. `environment:prod`; `pull_request` has no value. */
export interface GitHubSubjectQualifier {
  readonly key: string;
  readonly value: string | undefined;
}

/** A GitHub Actions `sub` claim taken apart. */
export interface GitHubSubject {
  /** `name`: `repo:OWNER/REPO:...`; `immutable`: `repo:OWNER@OWNER_ID/REPO@REPO_ID:...`. */
  readonly format: 'name' | 'immutable';
  readonly owner: string;
  /** Only in the immutable format. */
  readonly ownerId: string | undefined;
  /** `OWNER/REPO`, comparable with the `repository` claim. */
  readonly repository: string;
  readonly repositoryName: string;
  /** Only in the immutable format. */
  readonly repositoryId: string | undefined;
  /** What follows the repository, in order (the default template gives exactly one). */
  readonly qualifiers: readonly GitHubSubjectQualifier[];
  /** `environment:NAME`, when present. */
  readonly environment: string | undefined;
  /** `ref:REF`, when present. */
  readonly ref: string | undefined;
  /** `ref_type:TYPE`, when present. */
  readonly refType: string | undefined;
  /** The `pull_request` qualifier is present. */
  readonly pullRequest: boolean;
}

// Owner logins are letters, digits and "-"; repository names add "_" and ".". Neither contains "@", "/" or ":".
const OWNER = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})';
const REPOSITORY = '[A-Za-z0-9._-]{1,100}';
const REPO_PART = new RegExp(`^repo:(${OWNER})(?:@(\\d+))?/(${REPOSITORY})(?:@(\\d+))?(?::(.*))?$`);

// Qualifiers GitHub emits without a value.
const VALUELESS = new Set(['pull_request']);

/**
 * Reads a GitHub Actions `sub` in either format: `repo:OWNER/REPO:...` or, when
 * the owner opted into immutable identifiers, `repo:OWNER@OWNER_ID/REPO@REPO_ID:...`.
 * Returns `undefined` for a subject that does not start with a repository
 * (custom templates may leave it out) or that mixes the two formats.
 *
 * The `sub` is only a convenience view: rules should match the separate claims
 * (`repository_id`, `environment`, ...), which GitHub signs just the same.
 */
export function parseGitHubSubject(sub: string): GitHubSubject | undefined {
  const match = REPO_PART.exec(sub);
  if (!match) return undefined;
  const [, owner = '', ownerId, repositoryName = '', repositoryId, rest] = match;
  // Either both ids or neither: a half-immutable subject is not something GitHub emits.
  if ((ownerId === undefined) !== (repositoryId === undefined)) return undefined;
  const qualifiers = rest === undefined ? [] : parseQualifiers(rest);
  if (qualifiers === undefined) return undefined;
  const valueOf = (key: string) => qualifiers.find((q) => q.key === key)?.value;
  return {
    format: ownerId === undefined ? 'name' : 'immutable',
    owner,
    ownerId,
    repository: `${owner}/${repositoryName}`,
    repositoryName,
    repositoryId,
    qualifiers,
    environment: valueOf('environment'),
    ref: valueOf('ref'),
    refType: valueOf('ref_type'),
    pullRequest: qualifiers.some((q) => q.key === 'pull_request'),
  };
}

function parseQualifiers(rest: string): GitHubSubjectQualifier[] | undefined {
  const parts = rest.split(':');
  const qualifiers: GitHubSubjectQualifier[] = [];
  for (let i = 0; i < parts.length; ) {
    const key = parts[i] ?? '';
    if (key === '') return undefined;
    if (VALUELESS.has(key)) {
      qualifiers.push({ key, value: undefined });
      i += 1;
      continue;
    }
    const value = parts[i + 1];
    if (value === undefined) return undefined;
    qualifiers.push({ key, value });
    i += 2;
  }
  return qualifiers;
}
