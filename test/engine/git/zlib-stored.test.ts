import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { deflateSync, inflateSync } from 'node:zlib';
import { adler32, deflateStored, inflateStored } from '../../../engine/git/zlib-stored.js';

const SIZES = [0, 1, 3, 4, 5, 100, 5551, 5552, 5553, 65535, 65536, 70000, 200000];

describe('stored zlib streams', () => {
  test('node:zlib inflates what deflateStored writes, and adler32 matches zlib', () => {
    for (const size of SIZES) {
      const data = randomBytes(size);
      assert.deepEqual(inflateSync(deflateStored(data)), data, `size ${size}`);
      const reference = deflateSync(data);
      assert.equal(adler32(data), reference.readUInt32BE(reference.length - 4), `adler ${size}`);
    }
  });

  test('inflateStored unpacks stored streams and declines compressed ones', () => {
    for (const size of SIZES) {
      const data = randomBytes(size);
      assert.deepEqual(Buffer.from(inflateStored(deflateStored(data), size) as Uint8Array), data, `size ${size}`);
      assert.deepEqual(Buffer.from(inflateStored(deflateSync(data, { level: 0 }), size) as Uint8Array), data, `zlib level 0, size ${size}`);
    }
    const text = Buffer.from('compressible '.repeat(50));
    assert.equal(inflateStored(deflateSync(text, { level: 6 }), text.length), undefined);
  });

  test('damage is declined, never returned as data', () => {
    const data = Buffer.from('some object body');
    const stream = Buffer.from(deflateStored(data));
    const badSum = Buffer.from(stream);
    badSum[badSum.length - 1] = (badSum[badSum.length - 1] as number) ^ 1;
    assert.equal(inflateStored(badSum, data.length), undefined);
    const badByte = Buffer.from(stream);
    badByte[9] = (badByte[9] as number) ^ 1;
    assert.equal(inflateStored(badByte, data.length), undefined);
    assert.equal(inflateStored(stream, data.length + 1), undefined, 'wrong expected size');
    assert.equal(inflateStored(stream.subarray(0, 12), data.length), undefined, 'truncated');
  });
});
