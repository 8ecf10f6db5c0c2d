/**
 * Git delta application (the instruction stream inside OFS_DELTA and REF_DELTA pack entries):
 * two varint sizes, then copy-from-base and insert-literal instructions.
 */
import { GatosError } from '../errors.js';

function readVarint(delta: Uint8Array, start: number): [value: number, next: number] {
  let value = 0;
  let scale = 1; // 2 ** (7 * bytes read): multiplied, since a variable power calls into C++
  let pos = start;
  for (;;) {
    if (pos >= delta.length) throw new GatosError('corrupt_pack', 'delta header is truncated');
    const byte = delta[pos++] as number;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, pos];
  }
}

export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  const [baseSize, afterBase] = readVarint(delta, 0);
  const [resultSize, start] = readVarint(delta, afterBase);
  if (baseSize !== base.length) throw new GatosError('corrupt_pack', `delta expects a ${baseSize}-byte base, got ${base.length}`);
  // Not zero-filled (every byte is written, or the delta is refused below), and from Node's
  // pool when small: `new Uint8Array(n)` costs an ArrayBuffer per object (~0.8 µs at 300 bytes).
  const out = Buffer.allocUnsafe(resultSize);
  let outPos = 0;
  let pos = start;
  while (pos < delta.length) {
    const op = delta[pos++] as number;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let bit = 0; bit < 4; bit++) if (op & (1 << bit)) offset |= (delta[pos++] as number) << (bit * 8);
      for (let bit = 0; bit < 3; bit++) if (op & (0x10 << bit)) size |= (delta[pos++] as number) << (bit * 8);
      offset >>>= 0;
      if (size === 0) size = 0x10000;
      if (offset + size > base.length || outPos + size > resultSize) throw new GatosError('corrupt_pack', 'delta copy is out of range');
      out.set(base.subarray(offset, offset + size), outPos);
      outPos += size;
    } else if (op !== 0) {
      if (pos + op > delta.length || outPos + op > resultSize) throw new GatosError('corrupt_pack', 'delta insert is out of range');
      out.set(delta.subarray(pos, pos + op), outPos);
      outPos += op;
      pos += op;
    } else {
      throw new GatosError('corrupt_pack', 'delta uses reserved opcode 0');
    }
  }
  if (outPos !== resultSize) throw new GatosError('corrupt_pack', `delta produced ${outPos} bytes, expected ${resultSize}`);
  return out;
}
