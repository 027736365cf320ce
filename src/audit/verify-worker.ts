import { parentPort } from 'node:worker_threads';
import { checkChunk } from './verify-chunk.js';

// Worker side of offline verification: one chunk of lines in, its per-line facts out.
parentPort?.on('message', (message: { id: number; data: Uint8Array; firstIndex: number }) => {
  const result = checkChunk(message.data, message.firstIndex);
  parentPort?.postMessage({ id: message.id, result }, [result.leafHashes.buffer, result.prevs.buffer, result.hasPrev.buffer, result.seqs.buffer] as ArrayBuffer[]);
});
