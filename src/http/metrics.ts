import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics. Labels are kinds, outcomes and codes: never a subject,
 * repository or anything a caller chooses freely (cardinality, and privacy).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly grants = new Counter({ name: 'latchkey_grants_total', help: 'Grant requests by kind and outcome', labelNames: ['kind', 'outcome'], registers: [this.registry] });
  readonly grantSeconds = new Histogram({
    name: 'latchkey_grant_duration_seconds',
    help: 'Time to answer a grant request, by kind',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly tokensRejected = new Counter({ name: 'latchkey_tokens_rejected_total', help: 'Refused identity tokens by error code', labelNames: ['code'], registers: [this.registry] });
  readonly pendingRevocations = new Gauge({ name: 'latchkey_revocations_pending', help: 'Grants whose revocation has not yet succeeded (retrying with backoff)', registers: [this.registry] });
  readonly httpRequests = new Counter({ name: 'latchkey_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
  }

  observeGrant(kind: string, outcome: string, seconds: number): void {
    const k = kind.slice(0, 32);
    this.grants.inc({ kind: k, outcome });
    this.grantSeconds.observe({ kind: k }, seconds);
  }
}
