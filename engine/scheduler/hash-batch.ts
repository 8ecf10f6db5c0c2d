/**
 * Hashes many byte strings laid out back to back (a HashTask's layout). Pure; used by workers
 * and by single-threaded callers alike.
 */
import { createHash } from 'node:crypto';
import { blake3Bytes } from '../codec/blake3.js';

export function hashBatch(algo: 'blake3' | 'sha1', data: Uint8Array, offsets: Uint32Array): Uint8Array {
  const width = algo === 'blake3' ? 32 : 20;
  const count = offsets.length - 1;
  const digests = new Uint8Array(count * width);
  for (let i = 0; i < count; i++) {
    const item = data.subarray(offsets[i], offsets[i + 1]);
    digests.set(algo === 'blake3' ? blake3Bytes(item) : createHash('sha1').update(item).digest(), i * width);
  }
  return digests;
}
