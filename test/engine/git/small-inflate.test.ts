import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { constants, deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { deflateSmall, SMALL_DEFLATE_LIMIT } from '../../../engine/git/small-deflate.js';
import { inflateSmall, inflateUpTo, SMALL_INFLATE_LIMIT } from '../../../engine/git/small-inflate.js';
import { structuredBytes } from './helpers/bytes.js';

const STRATEGIES = [constants.Z_DEFAULT_STRATEGY, constants.Z_FILTERED, constants.Z_HUFFMAN_ONLY, constants.Z_RLE, constants.Z_FIXED];

/** zlib's settings: every level, strategy, window and memory level it may have used. */
const zlibOptions = fc.record({
  level: fc.integer({ min: 0, max: 9 }),
  strategy: fc.constantFrom(...STRATEGIES),
  windowBits: fc.integer({ min: 9, max: 15 }),
  memLevel: fc.integer({ min: 1, max: 9 }),
});

/**
 * Bytes whose Huffman code needs codes longer than the decoder's lookup table (9 bits): byte
 * values with Fibonacci frequencies, shuffled.
 */
function longCodes(): Buffer {
  const counts = [1, 1];
  while (counts.length < 20) counts.push((counts.at(-1) as number) + (counts.at(-2) as number));
  const bytes: number[] = [];
  counts.forEach((count, i) => {
    for (let k = 0; k < count; k++) bytes.push(65 + i);
  });
  let state = 3;
  for (let i = bytes.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const j = state % (i + 1);
    [bytes[i], bytes[j]] = [bytes[j] as number, bytes[i] as number];
  }
  return Buffer.from(bytes);
}

describe('small-object inflate', () => {
  test("reads every stream zlib writes, whatever its settings, and the small-object encoder's (property)", () => {
    fc.assert(
      fc.property(structuredBytes(4 * SMALL_INFLATE_LIMIT), zlibOptions, fc.boolean(), (data, options, trailing) => {
        const z = deflateSync(data, options);
        // A pack entry is followed by the next one: bytes after the stream are not its business.
        const stream = trailing ? Buffer.concat([z, Buffer.from([0x78, 0x9c, 1, 2, 3])]) : z;
        assert.deepEqual(inflateSmall(stream, data.length), Buffer.from(data));
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(structuredBytes(SMALL_DEFLATE_LIMIT), (data) => {
        assert.deepEqual(inflateSmall(deflateSmall(data), data.length), Buffer.from(data));
      }),
      { numRuns: 200 },
    );
  });

  test('a stream of unknown length: its bytes when they fit the limit, else undefined (property)', () => {
    fc.assert(
      fc.property(structuredBytes(2 * SMALL_INFLATE_LIMIT), zlibOptions, (data, options) => {
        const z = deflateSync(data, options);
        assert.deepEqual(inflateUpTo(z, data.length), Buffer.from(data));
        assert.deepEqual(inflateUpTo(z, SMALL_INFLATE_LIMIT * 2), Buffer.from(data));
        if (data.length > 0) assert.equal(inflateUpTo(z, data.length - 1), undefined);
      }),
      { numRuns: 200 },
    );
  });

  test('codes longer than the lookup table, stored blocks between compressed ones, empty input', () => {
    const skewed = longCodes();
    for (const strategy of [constants.Z_HUFFMAN_ONLY, constants.Z_DEFAULT_STRATEGY]) {
      assert.deepEqual(inflateSmall(deflateSync(skewed, { strategy }), skewed.length), skewed);
    }
    // Random bytes make zlib store blocks; text after them is compressed: a stream of several blocks.
    let state = 9;
    const noise = Buffer.alloc(70_000, 0).map(() => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state >>> 16;
    });
    const mixed = Buffer.concat([noise, Buffer.from('commit '.repeat(5000))]);
    assert.deepEqual(inflateSmall(deflateSync(mixed, { level: 1 }), mixed.length), mixed);
    assert.deepEqual(inflateSmall(deflateSync(Buffer.alloc(0)), 0), Buffer.alloc(0));
  });

  test('answers undefined, never a wrong body, for streams it does not take or that are damaged', () => {
    const body = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\n\nmessage\n'.repeat(4));
    const z = deflateSync(body);
    // The size the object header gave must be the size the stream holds.
    assert.equal(inflateSmall(z, body.length - 1), undefined);
    assert.equal(inflateSmall(z, body.length + 1), undefined);
    // A preset dictionary, a wrong header check, another method, a damaged Adler-32, a cut stream.
    assert.equal(inflateSmall(deflateSync(body, { dictionary: Buffer.from('tree author') }), body.length), undefined);
    assert.equal(inflateSmall(Buffer.concat([Buffer.from([0x78, 0x9d]), z.subarray(2)]), body.length), undefined);
    assert.equal(inflateSmall(Buffer.concat([Buffer.from([0x79, 0x9c]), z.subarray(2)]), body.length), undefined);
    const badSum = Buffer.from(z);
    badSum[badSum.length - 1] = (badSum[badSum.length - 1] as number) ^ 1;
    assert.equal(inflateSmall(badSum, body.length), undefined);
    for (let cut = 0; cut < z.length; cut++) assert.equal(inflateSmall(z.subarray(0, cut), body.length), undefined, `cut at ${cut}`);
    // Damage anywhere: either undefined, or exactly what zlib reads from the same bytes.
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 3 }), (flips) => {
        const damaged = Buffer.from(z);
        for (const [at, bit] of flips) damaged[at % damaged.length] = (damaged[at % damaged.length] as number) ^ (1 << bit);
        const got = inflateSmall(damaged, body.length);
        if (got === undefined) return;
        assert.deepEqual(got, inflateSync(damaged));
      }),
      { numRuns: 2000 },
    );
  });
});
