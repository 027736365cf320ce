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
export async function startBrokerProcess({ config, databaseUrl, env = {}, expiryMaxSleepMs, execArgv = [] }) {
  const child = fork(here('./broker-process.js'), [], { env: { ...process.env, ...env }, execArgv: [...PRODUCTION_NODE_FLAGS, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send({ config, databaseUrl, expiryMaxSleepMs });
  const ready = await firstMessage(child, 60_000, 'broker').catch((err) => {
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
