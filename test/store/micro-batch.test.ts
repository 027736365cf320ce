import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../src/store/micro-batch.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A batcher whose flushes are recorded and answered by the test. */
function recordingBatcher() {
  const flushes: { items: readonly number[]; answer: (outputs: readonly string[]) => void; fail: (err: unknown) => void }[] = [];
  const batcher = new MicroBatcher<number, string>(
    (items) =>
      new Promise((answer, fail) => {
        flushes.push({ items, answer, fail });
      }),
  );
  return { batcher, flushes };
}

describe('MicroBatcher', () => {
  it('flushes a lone call before the event loop turns, so a lone request waits for no turn', async () => {
    const { batcher, flushes } = recordingBatcher();
    let flushedBeforeTurn: boolean | undefined;
    setImmediate(() => (flushedBeforeTurn = flushes.length === 1));
    const out = batcher.run(1);
    await nextTurn();
    expect(flushedBeforeTurn).toBe(true);
    flushes[0]?.answer(['one']);
    expect(await out).toBe('one');
  });

  it('gives calls made in the same synchronous run one flush, each caller its own output', async () => {
    const { batcher, flushes } = recordingBatcher();
    const outs = [batcher.run(1), batcher.run(2), batcher.run(3)];
    await nextTurn();
    expect(flushes.map((f) => f.items)).toEqual([[1, 2, 3]]);
    flushes[0]?.answer(['a', 'b', 'c']);
    expect(await Promise.all(outs)).toEqual(['a', 'b', 'c']);
  });

  it('batches the calls of one turn together while an earlier batch is in flight', async () => {
    const { batcher, flushes } = recordingBatcher();
    const first = batcher.run(1);
    await Promise.resolve();
    expect(flushes).toHaveLength(1);
    // Under load: calls from separate callbacks of one turn share the next statement.
    const later = [batcher.run(2)];
    await Promise.resolve();
    later.push(batcher.run(3));
    expect(flushes).toHaveLength(1);
    await nextTurn();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3]]);
    flushes[1]?.answer(['b', 'c']);
    flushes[0]?.answer(['a']);
    expect(await first).toBe('a');
    expect(await Promise.all(later)).toEqual(['b', 'c']);
  });

  it('rejects every call of a failed batch, and flushes a lone call at once again afterwards', async () => {
    const { batcher, flushes } = recordingBatcher();
    const outs = [batcher.run(1), batcher.run(2)];
    await Promise.resolve();
    flushes[0]?.fail(new Error('database gone'));
    for (const result of await Promise.allSettled(outs)) expect(result).toMatchObject({ status: 'rejected', reason: { message: 'database gone' } });
    const again = batcher.run(3);
    await Promise.resolve();
    expect(flushes.map((f) => f.items)).toEqual([[1, 2], [3]]);
    flushes[1]?.answer(['c']);
    expect(await again).toBe('c');
  });
});
