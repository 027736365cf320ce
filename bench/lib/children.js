// Starting the broker and the load generator as separate processes.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const here = (file) => new URL(file, import.meta.url);

/**
 * The Node flags a deployed broker runs with: the Helm chart's `nodeOptions`
 * (the V8 heap ceiling, which also makes V8 collect the old generation
 * sooner), so memory is measured as it is in production.
 */
export const PRODUCTION_NODE_FLAGS = String(parse(readFileSync(here('../../helm/latchkey/values.yaml'), 'utf8')).nodeOptions ?? '')
  .split(' ')
  .filter(Boolean);

/** Waits for the first message of a child, failing if it exits first or takes longer than `ms`. */
function firstMessage(child, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    child.once('message', (message) => {
      clearTimeout(timer);
      if (message?.error) reject(new Error(`${what}: ${message.error}`));
      else resolve(message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited with code ${code}`));
    });
  });
}

/**
 * Starts latchkey's broker in a child process (dev mode, given database).
 * `env` is added to the child's environment (target admin URLs); `execArgv`
 * are Node flags for it (e.g. `--cpu-prof`), after PRODUCTION_NODE_FLAGS.
 * Resolves with `{ url, dataDir, pid, close() }`.
 */
export function startBrokerProcess({ config, databaseUrl, env = {}, expiryMaxSleepMs, execArgv = [] }) {
  return startServerProcess('./broker-process.js', { config, databaseUrl, expiryMaxSleepMs }, { env, execArgv, what: 'broker' });
}

/**
 * Starts the bare grant server of lib/skeleton-grant.js (the floor under an
 * AWS grant), with the broker's Node flags. Resolves with `{ url, pid, close() }`.
 */
export function startSkeletonProcess({ databaseUrl, stsUrl, roleArn, env = {} }) {
  return startServerProcess('./skeleton-grant.js', { databaseUrl, stsUrl, roleArn }, { env, what: 'skeleton grant server' });
}

/**
 * Starts the crypto-only server of lib/crypto-floor-server.js (the ceiling for
 * certificate grants), with the broker's Node flags. Resolves with `{ url, pid, close() }`.
 */
export function startCryptoFloorProcess({ issuerJwk, caKeyPem, tbsBytes, answerBytes }) {
  return startServerProcess('./crypto-floor-server.js', { issuerJwk, caKeyPem, tbsBytes, answerBytes }, { env: {}, what: 'crypto floor server' });
}

/** Forks `script`, sends it `message`, and waits for its `{ url, ... }` answer; `close()` asks it to stop. */
async function startServerProcess(script, message, { env, execArgv = [], what }) {
  const child = fork(here(script), [], { env: { ...process.env, ...env }, execArgv: [...PRODUCTION_NODE_FLAGS, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(message);
  const ready = await firstMessage(child, 60_000, what).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    ...ready,
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.send({ close: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs one autocannon job in a child process; resolves with its summary (see lib/load.js). */
export async function runLoadProcess(job) {
  const child = fork(here('./load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(job);
  try {
    const message = await firstMessage(child, (job.seconds + 60) * 1000, 'load generator');
    return message.result;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
