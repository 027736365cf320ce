import { awsKind } from './aws/index.js';
import { certificateKind } from './certificate/index.js';
import { postgresKind } from './postgres/index.js';
import type { ProviderKind } from './provider.js';

/**
 * Every credential kind latchkey can issue. Adding one is a folder under
 * `providers/` and one line here; `grants/` and `policy/` never change.
 */
export const providerKinds: readonly ProviderKind<any, any, any>[] = [
  certificateKind,
  postgresKind,
  awsKind,
];

export function findProviderKind(kind: string): ProviderKind<any, any, any> | undefined {
  return providerKinds.find((k) => k.kind === kind);
}
