import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { decode as libraryDecode, encode as libraryEncode } from '@ipld/dag-cbor';
import fc from 'fast-check';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import {
  blake3Hex,
  blake3HexOfFile,
  blake3Ready,
  contentId,
  contentIdOfJson,
  isContentId,
  largeInputHasher,
  NATIVE_FROM_BYTES,
  useNativeBlake3,
} from '../../../engine/codec/blake3.js';
import { canonicalize, parseJson } from '../../../engine/codec/canonical-json.js';
import { decodeDagCbor, encodeDagCbor, eventCid } from '../../../engine/codec/dag-cbor.js';
import { decodeJsonDagCbor, encodeJsonDagCbor } from '../../../engine/codec/dag-cbor-json.js';
import { explorerRoot, explorerRootBytes } from '../../../engine/codec/explorer-root.js';
import { seededRandom } from '../../../engine/codec/random.js';
import { assertUlid, createUlidFactory, isUlid, ulidTime } from '../../../engine/codec/ulid.js';
import { GatosError } from '../../../engine/errors.js';

const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;

before(() => blake3Ready());

/** JSON-shaped values as envelopes hold them, with the edge cases of DAG-CBOR's encoding. */
function jsonShaped() {
  const key = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.constantFrom('a', 'b', 'aa', 'é', '\u{1F600}', '\uffff', '__proto__'),
  );
  const leaf = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.constantFrom('\ud800', 'a\udfff', '\u{10FFFF}'),
    fc.string({ minLength: 250, maxLength: 300 }),
    fc.maxSafeInteger(),
    fc.integer(),
    fc.constantFrom(0, -0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -24, -25, -(2 ** 32), Number.MIN_SAFE_INTEGER),
    fc.boolean(),
    fc.constant(null),
  );
  return fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 30 }),
    object: fc.dictionary(key, tie('value'), { maxKeys: 24 }),
  })).value;
}

describe('RFC 8785 canonical JSON', () => {
  test('number serialization (RFC 8785 appendix B and ECMAScript edge cases)', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [-0, '0'],
      [1e21, '1e+21'],
      [1e20, '100000000000000000000'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [4.5, '4.5'],
      [0.002, '0.002'],
      [333333333.3333333, '333333333.3333333'],
      [9007199254740991, '9007199254740991'],
      [-9007199254740991, '-9007199254740991'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [295147905179352830000, '295147905179352830000'],
      [-1.5e-10, '-1.5e-10'],
    ];
    for (const [value, text] of cases) assert.equal(canonicalize(value), text, String(value));
  });

  test('keys sort by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = parseJson(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'];
    const expected = `{${order.map((key) => `${JSON.stringify(key)}:${JSON.stringify((input as Record<string, string>)[key])}`).join(',')}}`;
    assert.equal(canonicalize(input), expected);
    assert.ok(canonicalize(input).startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"'));
  });

  test('escapes and whitespace', () => {
    assert.equal(canonicalize({ s: '\u0000\b\f\n\r\t"\\/\u001f\u007f€' }), '{"s":"\\u0000\\b\\f\\n\\r\\t\\"\\\\/\\u001f\u007f€"}');
    assert.equal(
      canonicalize(parseJson(' { "b" : [ 1 , { "d" : true , "c" : null } ] , "a" : "x" } ')),
      '{"a":"x","b":[1,{"c":null,"d":true}]}',
    );
  });

  test('the RFC 8785 §3.2.2 sample', () => {
    const sample =
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}';
    assert.equal(
      canonicalize(parseJson(sample)),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('values JSON cannot carry are refused', () => {
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      () => 1,
      10n,
      Symbol('s'),
      { a: undefined },
      new Date(0),
      '\ud800',
      { '\udc00': 1 },
    ]) {
      assert.throws(() => canonicalize(bad), isCode('invalid_json'));
    }
  });

  test('equals a plain sort-and-stringify reference on random JSON values', () => {
    // Built as text, not through an object: JSON.stringify would put integer-like keys first.
    const reference = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (value !== null && typeof value === 'object')
        return `{${Object.keys(value)
          .sort()
          .map((key) => `${JSON.stringify(key)}:${reference((value as Record<string, unknown>)[key])}`)
          .join(',')}}`;
      return JSON.stringify(value);
    };
    const key = fc.oneof(fc.string(), fc.constantFrom('1', '10', '2', 'a', 'A', '\u00e9', '\u20ac', '\ud83d\ude00', '\ufb33'));
    const value = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(null, true, false),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
        fc.string({ unit: 'grapheme' }),
        fc.array(tie('json'), { maxLength: 5 }),
        fc.dictionary(key, tie('json'), { maxKeys: 20 }),
      ),
    })).json;
    fc.assert(
      fc.property(value, (v) => canonicalize(v) === reference(v)),
      { numRuns: 500 },
    );
    // The same values with every object's keys put in in sorted order (what the fast path, one
    // JSON.stringify, takes whole), and in reverse (what it hands to the serializer).
    const rebuilt = (v: unknown, order: (keys: string[]) => string[]): unknown => {
      if (Array.isArray(v)) return v.map((item) => rebuilt(item, order));
      if (v === null || typeof v !== 'object') return v;
      // Own properties whatever the key: `out[key] =` on a "__proto__" key would set the prototype.
      return Object.fromEntries(order(Object.keys(v)).map((key) => [key, rebuilt((v as Record<string, unknown>)[key], order)]));
    };
    fc.assert(
      fc.property(value, (v) => {
        const sorted = rebuilt(v, (keys) => [...keys].sort());
        const reversed = rebuilt(v, (keys) => [...keys].sort().reverse());
        return canonicalize(sorted) === reference(v) && canonicalize(reversed) === reference(v);
      }),
      { numRuns: 500 },
    );
  });

  test('objects already in key order give the same text and the same refusals', () => {
    assert.equal(canonicalize({ a: 2, b: 1 }), '{"a":2,"b":1}');
    assert.equal(canonicalize({ b: 1, a: 2 }), '{"a":2,"b":1}');
    // Integer-like keys come first from Object.keys whatever the insertion order; as text "10" < "9".
    assert.equal(canonicalize({ '10': 1, '9': 2, a: [-0, 1e21] }), '{"10":1,"9":2,"a":[0,1e+21]}');
    assert.equal(canonicalize(Object.assign(Object.create(null), { a: 1 })), '{"a":1}');
    // An array subclass's toJSON is not JSON's business here: its items are written as they are.
    class Shouting extends Array {
      toJSON() {
        return 'LOUD';
      }
    }
    assert.equal(canonicalize({ a: Shouting.from([1, 2]) }), '{"a":[1,2]}');
    for (const bad of [
      { a: 1, b: undefined },
      { a: '\udc00' },
      { a: Object.assign(new Array(3), { 0: 1, 2: 3 }) },
      { a: { b: new Date(0) } },
      { a: Number.NaN },
      { a: () => 1 },
    ])
      assert.throws(() => canonicalize(bad), isCode('invalid_json'), String(JSON.stringify(bad)));
  });

  test('errors name where the bad value sits', () => {
    const at = (bad: unknown) => {
      try {
        canonicalize(bad);
      } catch (err) {
        return (err as GatosError).data.path;
      }
      return undefined;
    };
    assert.equal(at({ a: [1, { b: undefined }] }), '$.a[1].b');
    assert.equal(at([0, [new Date(0)]]), '$[1][0]');
    assert.equal(at({ x: { y: 1n } }), '$.x.y');
    assert.equal(at({ n: [1, Number.NaN] }), '$.n[1]');
    assert.equal(at({ s: ['ok', 'bad \ud800'] }), '$.s[1]');
    assert.equal(
      at(() => 1),
      '$',
    );
  });

  test('parseJson rejects duplicate keys and bad syntax', () => {
    assert.throws(() => parseJson('{"a":1,"a":2}'), isCode('invalid_json'));
    assert.throws(() => parseJson('{"x":{"a":1,"b":[{"a":1}],"a":2}}'), isCode('invalid_json'));
    assert.throws(() => parseJson('{"a":1,}'), isCode('invalid_json'));
    assert.throws(() => parseJson('{"a":1,"\\u0061":2}'), isCode('invalid_json'), 'an escaped repeat is a repeat');
    assert.deepEqual(parseJson('{"a\\"b":1,"a":2}'), { 'a"b': 1, a: 2 });
    assert.deepEqual(parseJson('{"a":{"a":1},"b":["a","a"],"c":"a\\"a"}'), { a: { a: 1 }, b: ['a', 'a'], c: 'a"a' });
  });
});

describe('BLAKE3', () => {
  test('known answers', () => {
    assert.equal(blake3Hex(''), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    assert.equal(blake3Hex('abc'), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
    assert.equal(contentId(new TextEncoder().encode('abc')), 'blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  });

  test('large inputs and files: the native hasher and WASM give the same digests', () => {
    assert.equal(largeInputHasher(), 'native', 'the prebuilt native BLAKE3 should load on this platform');
    const random = seededRandom(7);
    const sizes = [NATIVE_FROM_BYTES - 1, NATIVE_FROM_BYTES, NATIVE_FROM_BYTES + 1, 1 << 20, (4 << 20) + 1, (9 << 20) + 7];
    const dir = mkdtempSync(join(tmpdir(), 'gatos-blake3-'));
    try {
      for (const size of sizes) {
        const bytes = Buffer.alloc(size);
        for (let i = 0; i < size; i += 4) bytes.writeUInt32LE(Math.floor(random() * 2 ** 32) >>> 0, Math.min(i, size - 4));
        const path = join(dir, `f${size}`);
        writeFileSync(path, bytes);
        // A view that starts inside its buffer, too.
        const view = bytes.subarray(3);
        const fast = { buffer: blake3Hex(bytes), view: blake3Hex(view), file: blake3HexOfFile(path) };
        useNativeBlake3(false);
        try {
          assert.equal(largeInputHasher(), 'wasm');
          assert.equal(fast.buffer, blake3Hex(bytes), `buffer of ${size} bytes`);
          assert.equal(fast.view, blake3Hex(view), `view of ${size - 3} bytes`);
          assert.deepEqual(fast.file, blake3HexOfFile(path), `file of ${size} bytes`);
        } finally {
          useNativeBlake3(true);
        }
        assert.equal(fast.file.hex, fast.buffer);
        assert.equal(fast.file.size, size);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('content ids of JSON hash the canonical bytes', () => {
    assert.equal(contentIdOfJson({ b: 1, a: 2 }), contentId('{"a":2,"b":1}'));
    assert.ok(isContentId(contentIdOfJson([])));
    assert.ok(!isContentId('blake3:ABC'));
  });
});

describe('ULID', () => {
  test('validation', () => {
    assert.ok(isUlid('01ARZ3NDEKTSV4RRFFQ69G5FAV'));
    for (const bad of [
      '01ARZ3NDEKTSV4RRFFQ69G5FA',
      '01ARZ3NDEKTSV4RRFFQ69G5FAVV',
      '01ARZ3NDEKTSV4RRFFQ69G5FAI',
      '81ARZ3NDEKTSV4RRFFQ69G5FAV',
      '01arz3ndektsv4rrffq69g5fav',
    ]) {
      assert.ok(!isUlid(bad), bad);
      assert.throws(() => assertUlid(bad), isCode('invalid_ulid'));
    }
  });

  test('generation uses the injected clock and is monotonic within a millisecond', () => {
    const next = createUlidFactory(() => 1_700_000_000_000, seededRandom(1));
    const ids = Array.from({ length: 1000 }, next);
    for (let i = 1; i < ids.length; i++) assert.ok((ids[i - 1] as string) < (ids[i] as string));
    assert.equal(ulidTime(ids[0] as string), 1_700_000_000_000);
    const again = createUlidFactory(() => 1_700_000_000_000, seededRandom(1));
    assert.equal(again(), ids[0], 'same seed and clock, same ULID');
  });
});

describe('DAG-CBOR and event CIDs', () => {
  test('map keys are ordered length-first, then bytewise', () => {
    const envelope = {
      actor: 'user:alice',
      caps: [],
      payload: { n: 1 },
      policy_root: '0'.repeat(40),
      sig_alg: 'ed25519',
      ts: '2025-01-01T00:00:00Z',
      type: 'x',
      ulid: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
    };
    const bytes = encodeDagCbor(envelope);
    // The library reads keys back in the order they are stored.
    assert.deepEqual(Object.keys(libraryDecode(bytes) as object), [
      'ts',
      'caps',
      'type',
      'ulid',
      'actor',
      'payload',
      'sig_alg',
      'policy_root',
    ]);
    // Ours puts them in in canonical JSON's order, so canonicalize can stringify the object whole.
    const decoded = decodeDagCbor(bytes) as Record<string, unknown>;
    assert.deepEqual(Object.keys(decoded), Object.keys(envelope));
    assert.deepEqual(decoded, envelope);
    // Maps past the insertion sort's size, and a key repeated in one (declined, the library decides).
    const wide = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 7) % 40}`, i]));
    assert.deepEqual(Object.keys(decodeJsonDagCbor(encodeDagCbor(wide)) as object), Object.keys(wide).sort());
    const text = (s: string) => [0x60 | s.length, ...Buffer.from(s)];
    const repeated = Uint8Array.from([0xb1, ...Array.from({ length: 17 }, (_, i) => [...text(`k${i % 16}`), 0x01]).flat()]);
    assert.equal(decodeJsonDagCbor(repeated), undefined);
  });

  test('event CIDs are CIDv1 dag-cbor with a blake3 multihash over the bytes', () => {
    const bytes = encodeDagCbor({ a: 1 });
    const cid = CID.parse(eventCid(bytes));
    assert.equal(cid.version, 1);
    assert.equal(cid.code, 0x71);
    assert.equal(cid.multihash.code, 0x1e);
    assert.equal(Buffer.from(cid.multihash.digest).toString('hex'), blake3Hex(bytes));
    assert.ok(eventCid(bytes).startsWith('b'));
  });

  test('the JSON encoder writes the bytes @ipld/dag-cbor writes (property), and declines what it does not cover', () => {
    fc.assert(
      fc.property(jsonShaped(), (value) => {
        assert.deepEqual(Buffer.from(encodeJsonDagCbor(value) as Uint8Array), Buffer.from(libraryEncode(value)));
      }),
      { numRuns: 500 },
    );
    for (const other of [1.5, Number.NaN, 2 ** 53, { a: undefined }, new Uint8Array(2), [new Date(0)], { a: () => 1 }]) {
      assert.equal(encodeJsonDagCbor(other), undefined, String(other));
    }
    assert.deepEqual(decodeDagCbor(encodeDagCbor({ b: new Uint8Array([1, 2]), f: 1.5 })), { b: new Uint8Array([1, 2]), f: 1.5 });
  });

  test('the JSON decoder reads what @ipld/dag-cbor reads (property), and declines the rest', () => {
    // What it leaves to the library: a __proto__ key, and strings the library reads with a
    // byte order mark dropped.
    const declines = (value: unknown): boolean => /"__proto__"|\ufeff/.test(JSON.stringify(value));
    fc.assert(
      fc.property(jsonShaped(), (value) => {
        const bytes = libraryEncode(value);
        const fast = decodeJsonDagCbor(bytes);
        if (fast === undefined) assert.ok(declines(value), JSON.stringify(value));
        else assert.deepEqual(fast, libraryDecode(bytes));
      }),
      { numRuns: 500 },
    );
    // Damaged or foreign bytes: declined, or read exactly as the library reads them.
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.tuple(jsonShaped(), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([value, i, byte]) => {
        const bytes = Uint8Array.from(libraryEncode(value));
        bytes[i % bytes.length] = byte;
        return bytes;
      }),
      fc.tuple(jsonShaped(), fc.nat()).map(([value, cut]) => {
        const bytes = libraryEncode(value);
        return bytes.subarray(0, cut % (bytes.length + 1));
      }),
    );
    fc.assert(
      fc.property(damaged, (bytes) => {
        const fast = decodeJsonDagCbor(bytes);
        if (fast === undefined) return;
        assert.deepEqual(fast, libraryDecode(bytes));
      }),
      { numRuns: 2000 },
    );
    const declined = [
      [0x18, 0x05], // 5 in two bytes: not shortest
      [0x19, 0x00, 0x10], // 16 in three bytes
      [0x1b, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // 2^53: a BigInt in the library
      [0xf9, 0x3c, 0x00], // a half float
      [0xf7], // undefined (the library reads null)
      [0x9f, 0xff], // an indefinite array
      [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], // a repeated key
      [0xa1, 0x01, 0x02], // an integer key
      [0x63, 0xef, 0xbb, 0xbf], // a string that is a byte order mark
      [0x62, 0xc3, 0x28], // invalid UTF-8
      [0x42, 0x01, 0x02], // bytes
      [0x01, 0x02], // trailing data
    ];
    for (const bytes of declined) assert.equal(decodeJsonDagCbor(Uint8Array.from(bytes)), undefined, Buffer.from(bytes).toString('hex'));
    assert.deepEqual(decodeDagCbor(Uint8Array.from([0xf7])), null, 'the library decides what is declined');
  });

  test('event CIDs render as multiformats renders them (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const expected = CID.createV1(0x71, Digest.create(0x1e, Buffer.from(blake3Hex(bytes), 'hex'))).toString();
        assert.equal(eventCid(bytes), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('garbage is invalid_object', () => {
    assert.throws(() => decodeDagCbor(Uint8Array.from([0xff, 0x00])), isCode('invalid_object'));
    assert.throws(() => encodeDagCbor({ a: undefined }), isCode('invalid_object'));
  });
});

describe('Explorer-Root (SPEC §15.1 worked example)', () => {
  const fields = {
    ledgerHead: '1111111111111111111111111111111111111111',
    policyRoot: '2222222222222222222222222222222222222222',
    foldRoot: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    extractorVersion: 'v1.2.3+linux-x86_64',
  };

  test('serialization and digest', () => {
    const bytes = Buffer.from(explorerRootBytes(fields));
    assert.equal(bytes.length, 107);
    assert.equal(
      bytes.toString('hex'),
      '00000014111111111111111111111111111111111111111100000014222222222222222222222222222222222222222200000020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0000001376312e322e332b6c696e75782d7838365f3634',
    );
    assert.equal(explorerRoot(fields), 'e4cbbcc02698608bb59ed39d715ffd6e74c2865f473daf7cb861f9da33565d9d');
  });

  test('raw-ledger variant omits fold_root entirely', () => {
    const { foldRoot: _omit, ...raw } = fields;
    assert.equal(explorerRoot(raw), 'cff49d30527a9ec640f1a9535d91a217894e9296062f49be91880b0d59ec177a');
  });

  test('prefixed digests are accepted; uppercase or odd-length hex is not', () => {
    assert.equal(explorerRoot({ ...fields, foldRoot: `sha256:${fields.foldRoot}` }), explorerRoot(fields));
    assert.throws(() => explorerRoot({ ...fields, foldRoot: fields.foldRoot.toUpperCase() }), isCode('invalid_argument'));
    assert.throws(() => explorerRoot({ ...fields, policyRoot: '123' }), isCode('invalid_argument'));
  });
});
