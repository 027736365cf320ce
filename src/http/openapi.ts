/** The OpenAPI 3.1 description of latchkey's HTTP API, served at /openapi.json. */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const problem = { $ref: '#/components/responses/Problem' };
  const bearer = [{ oidc: [] }];
  const grantId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const grantResponse = { description: 'The grant', content: { 'application/json': { schema: { $ref: '#/components/schemas/Grant' } } } };
  return {
    openapi: '3.1.0',
    info: {
      title: 'latchkey',
      version: '0.1.0',
      description: 'Just-in-time credential broker: exchange an OIDC identity token for a short-lived, scope-limited credential. Errors are RFC 9457 problem+json with a stable `code`.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { oidc: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An OIDC ID token from a configured issuer (GitHub Actions, SSO, or the dev issuer)' } },
      responses: {
        Problem: { description: 'An error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code', 'detail'],
          properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, code: { type: 'string' }, detail: { type: 'string' }, requestId: { type: 'string' }, explanation: { $ref: '#/components/schemas/Explanation' } },
        },
        GrantRequest: {
          type: 'object',
          required: ['kind', 'target'],
          additionalProperties: false,
          properties: {
            kind: { type: 'string', examples: ['certificate', 'postgres', 'aws'] },
            target: { type: 'string' },
            scope: {
              type: 'object',
              description: 'Kind-specific. certificate: {csr} or {generate, keyType, pkcs12}; postgres: {database, tables, columns, privileges}; aws: {role}',
            },
            ttl: { type: 'string', examples: ['10m'], description: 'Requested lifetime, capped by the rule (15 minutes by default)' },
            reason: { type: 'string', maxLength: 500 },
          },
        },
        Grant: {
          type: 'object',
          properties: {
            id: { type: 'string', format: 'uuid' },
            status: { enum: ['pending_approval', 'approved', 'issuing', 'active', 'revoking', 'revoked', 'expired', 'failed', 'denied'] },
            kind: { type: 'string' },
            target: { type: 'string' },
            rule: { type: 'string' },
            subject: { type: 'string' },
            expiresAt: { type: 'string', format: 'date-time' },
            providerRef: { type: ['string', 'null'], description: 'Certificate serial, database role or AWS access key id' },
            credential: { type: 'object', description: 'Only in the 201 answer that issued it; never stored, never shown again' },
            warnings: { type: 'array', items: { type: 'string' }, description: 'What the broker changed from the request, e.g. a ttl cut to the max_ttl of the rule; absent when nothing was' },
          },
        },
        Explanation: {
          type: 'object',
          properties: {
            allowed: { type: 'boolean' },
            rule: { type: 'string' },
            summary: { type: 'string' },
            hiddenRules: { type: 'integer' },
            evaluations: { type: 'array', items: { type: 'object', properties: { rule: { type: 'string' }, matched: { type: 'boolean' }, failure: { type: 'object' } } } },
          },
        },
      },
    },
    paths: {
      '/v1/grants': {
        post: {
          summary: 'Request a credential',
          security: bearer,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/GrantRequest' } } } },
          responses: { '201': { ...grantResponse, description: 'Issued: the credential is in this answer and nowhere else' }, '202': { ...grantResponse, description: 'Waiting for approval' }, '400': problem, '401': problem, '403': problem, '404': problem, '503': problem },
        },
        get: { summary: "The caller's own grants", security: bearer, responses: { '200': { description: 'Grants' }, '401': problem } },
      },
      '/v1/grants/pending': { get: { summary: 'Grants waiting for approval (approvers)', security: bearer, responses: { '200': { description: 'Grants' } } } },
      '/v1/grants/{id}': {
        get: { summary: 'A grant (its owner, auditors, approvers, admins)', security: bearer, parameters: [grantId], responses: { '200': grantResponse, '404': problem } },
        delete: { summary: 'Revoke a grant now (owner or admin); revocationNote says what revoking does not undo (an aws grant\'s STS session stays valid until it expires)', security: bearer, parameters: [grantId], responses: { '200': grantResponse, '202': { description: 'Revocation is being retried' }, '403': problem, '404': problem } },
      },
      '/v1/grants/{id}/approve': { post: { summary: 'Approve a pending grant (approver, not the requester)', security: bearer, parameters: [grantId], responses: { '200': grantResponse, '403': problem, '409': problem } } },
      '/v1/grants/{id}/deny': { post: { summary: 'Deny a pending grant', security: bearer, parameters: [grantId], responses: { '200': grantResponse, '403': problem, '409': problem } } },
      '/v1/grants/{id}/claim': { post: { summary: 'Issue an approved grant to its requester', security: bearer, parameters: [grantId], responses: { '201': grantResponse, '409': problem } } },
      '/v1/explain': {
        post: {
          summary: 'Explain what the policy would decide for this request, without issuing',
          security: bearer,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/GrantRequest' } } } },
          responses: { '200': { description: 'The explanation', content: { 'application/json': { schema: { $ref: '#/components/schemas/Explanation' } } } }, '400': problem, '401': problem },
        },
      },
      '/v1/whoami': { get: { summary: 'The verified identity and roles of the caller', security: bearer, responses: { '200': { description: 'Identity' }, '401': problem } } },
      '/v1/login/config': { get: { summary: 'Issuers an engineer can sign in through with `latchkey login` (issuer, public client id, scopes); no token needed', responses: { '200': { description: 'Login issuers' } } } },
      '/v1/ca': { get: { summary: 'Trust bundles of the certificate targets (JSON, or PEM with Accept: application/x-pem-file or ?target=)', responses: { '200': { description: 'Bundles' } } } },
      '/v1/targets/{target}/aws/revoke-sessions': {
        post: {
          summary: 'Deny every STS session of an AWS role issued before now (admin); STS credentials cannot be revoked one by one',
          security: bearer,
          parameters: [{ name: 'target', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['role'], properties: { role: { type: 'string' } } } } } },
          responses: { '200': { description: 'The deny policy was attached and audited' }, '403': problem, '404': problem, '502': problem, '503': problem },
        },
      },
      '/v1/ca/crl': {
        get: {
          summary: 'The CRL of a certificate target (?target=T): serials of grants revoked before their expiry, signed by the CA; DER (application/pkix-crl), or PEM with ?format=pem',
          parameters: [{ name: 'target', in: 'query', required: true, schema: { type: 'string' } }, { name: 'format', in: 'query', required: false, schema: { enum: ['der', 'pem'] } }],
          responses: { '200': { description: 'The CRL, valid for 10 minutes' }, '404': problem },
        },
      },
      '/v1/audit/events': { get: { summary: 'Audit events, filtered, in log order (auditors)', security: bearer, responses: { '200': { description: 'Events' }, '403': problem } } },
      '/v1/audit/export': { get: { summary: 'Stream audit events as JSONL or CSV (auditors)', security: bearer, responses: { '200': { description: 'Export' } } } },
      '/v1/audit/checkpoint': { get: { summary: 'Latest signed checkpoint (auditors)', security: bearer, responses: { '200': { description: 'Checkpoint' } } } },
      '/v1/audit/proof/inclusion': { get: { summary: 'RFC 9162 inclusion proof (auditors)', security: bearer, responses: { '200': { description: 'Proof' } } } },
      '/v1/audit/proof/consistency': { get: { summary: 'RFC 9162 consistency proof (auditors)', security: bearer, responses: { '200': { description: 'Proof' } } } },
      '/v1/audit/key': { get: { summary: 'The checkpoint verification key (signed-note format)', responses: { '200': { description: 'Key' } } } },
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'Alive' } } } },
      '/readyz': { get: { summary: 'Readiness: database reachable, keys loaded', responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Metrics' } } } },
    },
  };
}
