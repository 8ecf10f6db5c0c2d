import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { asGatosError } from '../../../engine/errors.js';
import { applyDelta } from '../../../engine/git/delta.js';

/** A git delta size: 7 bits per byte, low bits first. */
function varint(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** Copy `size` bytes of the base from `offset` (size 0x10000 is written as no size bytes). */
function copy(offset: number, size: number): number[] {
  const args: number[] = [];
  let op = 0x80;
  for (let i = 0; i < 4; i++) {
    const byte = (offset >>> (8 * i)) & 0xff;
    if (byte) {
      op |= 1 << i;
      args.push(byte);
    }
  }
  if (size !== 0x10000)
    for (let i = 0; i < 3; i++) {
      const byte = (size >>> (8 * i)) & 0xff;
      if (byte) {
        op |= 0x10 << i;
        args.push(byte);
      }
    }
  return [op, ...args];
}

const insert = (text: string): number[] => [text.length, ...Buffer.from(text)];
const delta = (baseSize: number, resultSize: number, ...ops: number[][]) =>
  Uint8Array.from([...varint(baseSize), ...varint(resultSize), ...ops.flat()]);

function failure(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    const error = asGatosError(err);
    assert.equal(error.code, 'corrupt_pack');
    return error.message;
  }
  assert.fail('expected corrupt_pack');
}

describe('applyDelta', () => {
  const base = Buffer.from('The quick brown fox jumps over the lazy dog');

  test('copies and inserts build the result', () => {
    const out = applyDelta(base, delta(base.length, 21, copy(4, 6), insert('red '), copy(40, 3), insert(' ran far')));
    assert.equal(Buffer.from(out).toString(), 'quick red dog ran far');
  });

  test('multi-byte sizes and the 64 KiB copy written without size bytes', () => {
    // Sizes of three varint bytes (a result of 70,000 bytes) and a copy of 0x10000 bytes.
    const big = randomBytes(0x10000 + 100);
    const out = applyDelta(big, delta(big.length, 0x10000 + 4464, copy(0, 0x10000), copy(100, 4464)));
    assert.equal(out.length, 70_000);
    assert.deepEqual(Buffer.from(out.subarray(0, 0x10000)), big.subarray(0, 0x10000));
    assert.deepEqual(Buffer.from(out.subarray(0x10000)), big.subarray(100, 100 + 4464));
  });

  test('a delta that writes fewer bytes than it declares is refused (no unwritten bytes escape)', () => {
    assert.match(
      failure(() => applyDelta(base, delta(base.length, 12, copy(0, 3)))),
      /produced 3 bytes, expected 12/,
    );
  });

  test('out-of-range copies and inserts, opcode 0, a wrong base and a truncated header are refused', () => {
    assert.match(
      failure(() => applyDelta(base, delta(base.length, 10, copy(40, 10)))),
      /copy is out of range/,
    );
    assert.match(
      failure(() => applyDelta(base, delta(base.length, 3, copy(0, 5)))),
      /copy is out of range/,
    );
    assert.match(
      failure(() => applyDelta(base, delta(base.length, 2, insert('abc')))),
      /insert is out of range/,
    );
    assert.match(
      failure(() => applyDelta(base, delta(base.length, 5, [0]))),
      /reserved opcode 0/,
    );
    assert.match(
      failure(() => applyDelta(base, delta(base.length + 1, 0))),
      /expects a 44-byte base/,
    );
    assert.match(
      failure(() => applyDelta(base, Uint8Array.from([0x80 | 43]))),
      /truncated/,
    );
  });
});
