/**
 * latchkey's public entry points, for embedding the broker or adding a
 * credential kind. The command (`latchkey`) is in cli/; everything else is
 * internal.
 */
export { startBroker, type Broker, type BrokerOptions } from './broker.js';
export { loadConfigFile, parseConfig, validateConfig, type Config } from './config/load.js';
export { systemClock, ManualClock, type Clock } from './clock.js';
export { Secret } from './secret.js';
export * from './errors.js';
export type { ProviderKind, TargetProvider, IssueInput, IssuedCredential, IssuedArtifact, RevokeInput, ProviderDeps } from './providers/provider.js';
export { providerKinds } from './providers/registry.js';
export type { VerifiedIdentity, Claims } from './identity/types.js';
export type { GrantRequest, PolicyDecision, PublicExplanation, ConditionFailure, RuleEvaluation } from './policy/types.js';
export type { AuditEventInput, AuditRecord, AuditEventType } from './audit/types.js';
export { verifyAuditExport, type VerifyReport } from './audit/verify.js';
export { canonicalJson } from './audit/canonical.js';
