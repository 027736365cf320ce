import type { TestProject } from 'vitest/node';
import { startCluster, type TestCluster } from './embedded-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the suite's shared embedded PostgreSQL (database `postgres`). */
    postgresUrl: string;
  }
}

let cluster: TestCluster | undefined;

/** One embedded PostgreSQL for the whole run; each test file makes its own database in it. */
export async function setup(project: TestProject): Promise<void> {
  cluster = await startCluster();
  project.provide('postgresUrl', cluster.url);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
