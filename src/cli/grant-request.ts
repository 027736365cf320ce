import { callBroker } from './client.js';
import type { CliIO } from './io.js';

/** What `POST /v1/grants` (or `/claim`) answers; `credential` is absent while approval is pending. */
export interface GrantAnswer<C> {
  readonly id: string;
  readonly status: string;
  readonly expiresAt: string;
  readonly credential?: C;
  readonly message?: string;
  /** What the broker changed from the request, e.g. a ttl capped by the rule. */
  readonly warnings?: readonly string[];
}

/** Exit code of a grant verb whose request waits for someone else's approval. */
export const EXIT_PENDING_APPROVAL = 3;

export function requestGrant<C>(url: string, token: string, body: Record<string, unknown>): Promise<GrantAnswer<C>> {
  return callBroker<GrantAnswer<C>>(url, 'POST', '/v1/grants', { token, body });
}

/** Issues an approved grant to its requester; the approver never sees the credential. */
export function claimApprovedGrant<C>(url: string, token: string, grantId: string, scope: Record<string, unknown> = {}): Promise<GrantAnswer<C>> {
  return callBroker<GrantAnswer<C>>(url, 'POST', `/v1/grants/${encodeURIComponent(grantId)}/claim`, { token, body: { scope } });
}

/** Tells the requester who must act, and how to collect the credential afterwards. */
export function reportPending(io: CliIO, grant: Pick<GrantAnswer<unknown>, 'id'>, claimCommand: string): number {
  io.stderr.write(
    `latchkey: grant ${grant.id} waits for approval by someone with the approver role (latchkey approve ${grant.id}).\n` +
      `latchkey: once approved, collect it with: ${claimCommand}\n`,
  );
  io.stdout.write(`${grant.id}\n`);
  return EXIT_PENDING_APPROVAL;
}

/** The broker's warnings about a grant (a ttl cut to the rule's max_ttl, ...), on stderr. */
export function reportWarnings(io: CliIO, answer: { readonly warnings?: unknown }): void {
  if (!Array.isArray(answer.warnings)) return;
  for (const warning of answer.warnings) io.stderr.write(`latchkey: warning: ${String(warning)}\n`);
}
