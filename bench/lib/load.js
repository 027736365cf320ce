// The load generator, run as its own process (`fork`) so it does not share an
// event loop with what it measures. Receives one job over IPC, runs autocannon,
// sends back a summary. A job with a tokens file sends each token once (single-
// use jti) and stops when they run out or the time is up, whichever is first.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

function summarise(result, cpuMs) {
  const ok = result['2xx'];
  return {
    ok,
    /** The load generator's own CPU time over the run (user + system), ms. */
    cpuMs,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    rate: ok / result.duration,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    statusCodes: result.statusCodeStats,
  };
}

/** Runs one job (see run.js / certificates.js for its fields) and resolves with its summary. */
export async function runLoad(job) {
  const tokens = job.tokensFile ? readFileSync(job.tokensFile, 'utf8').split('\n').filter(Boolean) : undefined;
  let next = 0;
  const headers = { 'content-type': 'application/json', ...(job.headers ?? {}) };
  const options = {
    url: job.url,
    connections: job.connections,
    pipelining: 1,
    timeout: 30,
    method: job.method ?? 'POST',
    headers,
    body: job.body,
    ...(tokens
      ? {
          amount: tokens.length,
          requests: [
            {
              setupRequest(request) {
                const token = tokens[next++ % tokens.length];
                return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } };
              },
            },
          ],
        }
      : { duration: job.seconds }),
  };
  const cpuBefore = process.cpuUsage();
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (err, result) => {
      if (err) return reject(err);
      const cpu = process.cpuUsage(cpuBefore);
      resolve(summarise(result, (cpu.user + cpu.system) / 1000));
    });
    // Time bound for token-driven runs (amount overrides duration in autocannon).
    const timer = setTimeout(() => instance.stop(), job.seconds * 1000);
    instance.on('done', () => clearTimeout(timer));
  });
}

if (process.send) {
  process.once('message', async (job) => {
    try {
      process.send({ result: await runLoad(job) });
    } catch (err) {
      process.send({ error: String(err?.stack ?? err) });
    }
    process.disconnect();
  });
}
