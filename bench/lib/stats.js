// Small helpers shared by the benchmark sections.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** The p-th percentile (0..100) of numbers, nearest-rank. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Runs `fn` (sync or async) back to back for at least `minMs` and at most
 * `maxOps` calls, after a short warm-up; returns operations per second.
 */
export async function opsPerSecond(fn, { minMs = 2000, maxOps = 200_000, warmup = 200 } = {}) {
  for (let i = 0; i < warmup; i += 1) await fn();
  let ops = 0;
  const started = performance.now();
  let elapsed = 0;
  while (ops < maxOps) {
    // Batches keep performance.now() out of the measured work.
    for (let i = 0; i < 50; i += 1) await fn();
    ops += 50;
    elapsed = performance.now() - started;
    if (elapsed >= minMs) break;
  }
  return (ops / elapsed) * 1000;
}

/** Synchronous variant of opsPerSecond: no promise per call. */
export function opsPerSecondSync(fn, { minMs = 2000, maxOps = 200_000, warmup = 200 } = {}) {
  for (let i = 0; i < warmup; i += 1) fn();
  let ops = 0;
  const started = performance.now();
  let elapsed = 0;
  while (ops < maxOps) {
    for (let i = 0; i < 50; i += 1) fn();
    ops += 50;
    elapsed = performance.now() - started;
    if (elapsed >= minMs) break;
  }
  return (ops / elapsed) * 1000;
}

/** Peak and current resident set size of a process, in MB (10^6 bytes; Linux /proc). */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { peakMB: (kib('VmHWM') * 1024) / 1e6, rssMB: (kib('VmRSS') * 1024) / 1e6 };
  } catch {
    return { peakMB: NaN, rssMB: NaN };
  }
}

/** Resets a process's peak RSS (VmHWM) so the next reading covers only what follows; false if not allowed. */
export function resetPeakMemory(pid) {
  try {
    // "5" resets the peak resident set size (Documentation/filesystems/proc.rst).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Rounds to a readable number of significant digits. */
export function round(value, digits = 3) {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 10 ** digits) return Math.round(value);
  return Number(value.toPrecision(digits));
}

/**
 * Measures several functions (sync or async) in alternating slices of
 * `sliceMs`, `rounds` times, so a noisy neighbour slows them all alike.
 * Returns ops/s per name.
 */
export async function interleavedOpsPerSecond(fns, { rounds = 6, sliceMs = 250, warmup = 100 } = {}) {
  const totals = Object.fromEntries(Object.keys(fns).map((name) => [name, { ops: 0, ms: 0 }]));
  for (const fn of Object.values(fns)) for (let i = 0; i < warmup; i += 1) await fn();
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, fn] of Object.entries(fns)) {
      const started = performance.now();
      let ops = 0;
      let elapsed = 0;
      while (elapsed < sliceMs) {
        for (let i = 0; i < 20; i += 1) await fn();
        ops += 20;
        elapsed = performance.now() - started;
      }
      totals[name].ops += ops;
      totals[name].ms += elapsed;
    }
  }
  return Object.fromEntries(Object.entries(totals).map(([name, t]) => [name, (t.ops / t.ms) * 1000]));
}

/** The fields after the command name in /proc/<pid>/stat (index 0 is the state), or undefined once the process is gone. */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, every thread) a process has used so far, in ms; NaN where /proc is not readable. */
export function cpuMsOf(pid) {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return fields ? (Number(fields[11]) + Number(fields[12])) * 10 : NaN;
}

/**
 * CPU time of a process and all its descendants, in ms, including children
 * it has already reaped (a PostgreSQL postmaster and its backends).
 */
export function cpuMsOfTree(rootPid) {
  const root = statFields(rootPid);
  if (!root) return NaN;
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (!fields) continue;
    const parent = Number(fields[1]);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(Number(entry));
  }
  // cutime and cstime (fields 16 and 17): what reaped children used.
  let total = (Number(root[13]) + Number(root[14])) * 10;
  const queue = [Number(rootPid)];
  while (queue.length > 0) {
    const pid = queue.pop();
    const ms = cpuMsOf(pid);
    if (!Number.isNaN(ms)) total += ms;
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}
