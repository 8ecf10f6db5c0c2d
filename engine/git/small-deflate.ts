/**
 * zlib streams for small objects, written in JavaScript. Node's `deflateSync` builds a stream
 * object per call, a fixed cost that dominates for the 100-500-byte commits and envelopes that
 * make up most of a GATOS repository. This encoder keeps its tables between calls (measured on
 * this project's 2-core machine, same process: 8.6 vs 13.8 µs per 171-byte envelope, 18.8 vs
 * 19.3 µs per 485-byte commit), and it needs no native call, so worker threads use it too.
 *
 * It emits one final block: greedy LZ77 (4-byte hash, one candidate, every position inserted)
 * coded with a dynamic Huffman table, the fixed table, or stored — whichever is smallest.
 * Ratios are close to zlib level 1 on this data; every zlib reader (git included) reads it.
 *
 * @example
 *   const z = deflateSmall(bytes); // inflateSync(z) equals bytes
 */
import { deflateSync } from 'node:zlib';
import {
  CL_ORDER,
  DIST_BASE,
  DIST_EXTRA,
  FIXED_DIST_LENGTHS,
  FIXED_LIT_LENGTHS,
  LEN_BASE,
  LEN_EXTRA,
  reverse15,
} from './deflate-format.js';
import { deflateStored, writeAdler32 } from './zlib-stored.js';

/** Inputs up to this size are handled here (distances then always fit deflate's 32 KiB window). */
export const SMALL_DEFLATE_LIMIT = 16 * 1024;

const MIN_MATCH = 4;
const MAX_MATCH = 258;
const HASH_BITS = 13;

/** Length 3..258 -> index into LEN_BASE; distance 1..SMALL_DEFLATE_LIMIT -> index into DIST_BASE. */
const lenIndex = new Uint8Array(MAX_MATCH + 1);
const distIndex = new Uint8Array(SMALL_DEFLATE_LIMIT + 1);
for (let i = 0; i < LEN_BASE.length; i++) {
  const end = i + 1 < LEN_BASE.length ? (LEN_BASE[i + 1] as number) : MAX_MATCH + 1;
  for (let len = LEN_BASE[i] as number; len < end; len++) lenIndex[len] = i;
}
lenIndex[MAX_MATCH] = 28;
for (let i = 0; i < DIST_BASE.length; i++) {
  const end = Math.min(SMALL_DEFLATE_LIMIT + 1, i + 1 < DIST_BASE.length ? (DIST_BASE[i + 1] as number) : 32769);
  for (let dist = DIST_BASE[i] as number; dist < end; dist++) distIndex[dist] = i;
}

/** `array[index] += by` for typed arrays (index known to be in range). */
function bump(array: Uint32Array, index: number, by: number): void {
  array[index] = (array[index] as number) + by;
}

const codeCount = new Uint32Array(16);
const nextCode = new Uint16Array(16);

/** Canonical Huffman codes for `lengths`, bit-reversed because deflate writes codes LSB first. */
function canonicalCodes(lengths: Uint8Array, count: number, codes: Uint16Array): void {
  codeCount.fill(0);
  for (let i = 0; i < count; i++) bump(codeCount, lengths[i] as number, 1);
  codeCount[0] = 0;
  let code = 0;
  for (let bits = 1; bits < 16; bits++) {
    code = (code + (codeCount[bits - 1] as number)) << 1;
    nextCode[bits] = code;
  }
  for (let i = 0; i < count; i++) {
    const len = lengths[i] as number;
    if (len === 0) continue;
    const value = nextCode[len] as number;
    nextCode[len] = value + 1;
    codes[i] = (reverse15[value] as number) >>> (15 - len);
  }
}

const keys = new Int32Array(320);
const sorted = new Int32Array(320);
const weight = new Int32Array(640);
const parent = new Int32Array(640);
const depth = new Uint8Array(640);
const perLength = new Uint32Array(64);

/**
 * Huffman code lengths for `freq` (complete codes, at most `limit` bits): two-queue Huffman,
 * then lengths over the limit are folded back by adjusting the count per length and
 * reassigning lengths by frequency.
 */
function huffmanLengths(freq: Uint32Array, count: number, limit: number, lengths: Uint8Array): void {
  lengths.fill(0, 0, count);
  // Sort symbols by (frequency, symbol) with one numeric key each: frequencies stay below 2^22.
  let m = 0;
  for (let i = 0; i < count; i++) {
    const f = freq[i] as number;
    if (f > 0) keys[m++] = (f << 9) | i;
  }
  if (m === 0) return;
  if (m === 1) {
    // A one-symbol code still needs a 1-bit code (zlib does the same).
    lengths[(keys[0] as number) & 0x1ff] = 1;
    return;
  }
  keys.subarray(0, m).sort();
  for (let i = 0; i < m; i++) {
    const key = keys[i] as number;
    sorted[i] = key & 0x1ff;
    weight[i] = key >>> 9;
  }
  // Leaves 0..m-1 in weight order, internal nodes m..2m-2 created in weight order too.
  let leaf = 0;
  let inner = m;
  for (let node = m; node < 2 * m - 1; node++) {
    let a: number;
    if (leaf < m && (inner >= node || (weight[leaf] as number) <= (weight[inner] as number))) a = leaf++;
    else a = inner++;
    let b: number;
    if (leaf < m && (inner >= node || (weight[leaf] as number) <= (weight[inner] as number))) b = leaf++;
    else b = inner++;
    weight[node] = (weight[a] as number) + (weight[b] as number);
    parent[a] = node;
    parent[b] = node;
  }
  const root = 2 * m - 2;
  depth[root] = 0;
  perLength.fill(0);
  for (let node = root - 1; node >= 0; node--) depth[node] = (depth[parent[node] as number] as number) + 1;
  for (let i = 0; i < m; i++) bump(perLength, Math.min(depth[i] as number, limit), 1);
  // Clamping made the code over-full by `total - 2^limit` units; trade one limit-length code
  // plus one shorter code for two codes one bit longer until it is complete again.
  let total = 0;
  for (let bits = 1; bits <= limit; bits++) total += (perLength[bits] as number) << (limit - bits);
  while (total > 1 << limit) {
    bump(perLength, limit, -1);
    for (let bits = limit - 1; bits > 0; bits--) {
      if ((perLength[bits] as number) > 0) {
        bump(perLength, bits, -1);
        bump(perLength, bits + 1, 2);
        break;
      }
    }
    total--;
  }
  // Rarest symbols get the longest codes.
  let next = 0;
  for (let bits = limit; bits > 0; bits--) {
    for (let k = perLength[bits] as number; k > 0; k--) lengths[sorted[next++] as number] = bits;
  }
}

// Per-call scratch, reused: symbols, frequencies, tables.
let symLength = new Uint16Array(SMALL_DEFLATE_LIMIT); // 0 = literal
let symValue = new Uint16Array(SMALL_DEFLATE_LIMIT); // literal byte or distance
const head = new Int32Array(1 << HASH_BITS);
let epoch = 1;
const litFreq = new Uint32Array(286);
const distFreq = new Uint32Array(30);
const clFreq = new Uint32Array(19);
const litLengths = new Uint8Array(286);
const distLengths = new Uint8Array(30);
const clLengths = new Uint8Array(19);
const litCodes = new Uint16Array(286);
const distCodes = new Uint16Array(30);
const clCodes = new Uint16Array(19);
const runs = new Uint8Array(316 * 2);
const allLengths = new Uint8Array(316); // code-length symbols and their extra values

const fixedLit = FIXED_LIT_LENGTHS;
const fixedDist = FIXED_DIST_LENGTHS;
const fixedLitCodes = new Uint16Array(288);
const fixedDistCodes = new Uint16Array(30);
canonicalCodes(fixedLit, 288, fixedLitCodes);
canonicalCodes(fixedDist, 30, fixedDistCodes);

/**
 * Gives a tree two coded symbols at least: zlib refuses incomplete codes, and a lone symbol's
 * 1-bit code is one. Returns the symbols it added (their counts must not be charged as data).
 */
function padTree(freq: Uint32Array, count: number): number[] {
  const added: number[] = [];
  let used = 0;
  for (let i = 0; i < count; i++) if ((freq[i] as number) > 0) used++;
  for (let i = 0; used < 2 && i < count; i++) {
    if (freq[i] === 0) {
      freq[i] = 1;
      added.push(i);
      used++;
    }
  }
  return added;
}

function hash4(data: Uint8Array, i: number): number {
  const word = (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
  return Math.imul(word, 0x9e3779b1) >>> (32 - HASH_BITS);
}

/** Greedy LZ77 over `data`; fills the symbol arrays and frequencies, returns the symbol count. */
function tokenize(data: Uint8Array): number {
  if (symLength.length < data.length) {
    symLength = new Uint16Array(data.length);
    symValue = new Uint16Array(data.length);
  }
  if (epoch + data.length + 1 >= 0x7fffffff) {
    head.fill(0);
    epoch = 1;
  }
  const base = epoch;
  epoch += data.length + 1;
  const n = data.length;
  // Module-level bindings cost a context load and a hole check per use; the loop uses locals.
  const lengths = symLength;
  const values = symValue;
  const table = head;
  const lits = litFreq;
  const dists = distFreq;
  let count = 0;
  let i = 0;
  while (i < n) {
    let length = 0;
    let distance = 0;
    if (i + MIN_MATCH <= n) {
      const h = hash4(data, i);
      const candidate = (table[h] as number) - base;
      table[h] = base + i;
      if (candidate >= 0 && data[candidate] === data[i] && data[candidate + 1] === data[i + 1] && data[candidate + 2] === data[i + 2]) {
        const max = Math.min(MAX_MATCH, n - i);
        let len = 3;
        while (len < max && data[candidate + len] === data[i + len]) len++;
        if (len >= MIN_MATCH) {
          length = len;
          distance = i - candidate;
        }
      }
    }
    if (length > 0) {
      lengths[count] = length;
      values[count++] = distance;
      bump(lits, 257 + (lenIndex[length] as number), 1);
      bump(dists, distIndex[distance] as number, 1);
      const end = i + length;
      for (let j = i + 1; j < end && j + MIN_MATCH <= n; j++) table[hash4(data, j)] = base + j;
      i = end;
    } else {
      lengths[count] = 0;
      values[count++] = data[i] as number;
      bump(lits, data[i] as number, 1);
      i++;
    }
  }
  return count;
}

/** Bits of the symbols under the given code lengths (extra bits included). */
function dataBits(lit: Uint8Array, dist: Uint8Array): number {
  let bits = lit[256] as number;
  for (let s = 0; s < 256; s++) bits += (litFreq[s] as number) * (lit[s] as number);
  for (let c = 0; c < 29; c++) bits += (litFreq[257 + c] as number) * ((lit[257 + c] as number) + (LEN_EXTRA[c] as number));
  for (let c = 0; c < 30; c++) bits += (distFreq[c] as number) * ((dist[c] as number) + (DIST_EXTRA[c] as number));
  return bits;
}

/** Run-length codes (16/17/18) of the concatenated code lengths; returns the pair count. */
function encodeRuns(lengths: Uint8Array, total: number): number {
  clFreq.fill(0);
  let pairs = 0;
  const push = (symbol: number, extra: number): void => {
    runs[pairs * 2] = symbol;
    runs[pairs * 2 + 1] = extra;
    pairs++;
    bump(clFreq, symbol, 1);
  };
  for (let i = 0; i < total; ) {
    const value = lengths[i] as number;
    let run = 1;
    while (i + run < total && lengths[i + run] === value) run++;
    i += run;
    if (value === 0) {
      while (run >= 11) {
        const take = Math.min(run, 138);
        push(18, take - 11);
        run -= take;
      }
      if (run >= 3) {
        push(17, run - 3);
        run = 0;
      }
    } else {
      push(value, 0);
      run--;
      while (run >= 3) {
        const take = Math.min(run, 6);
        push(16, take - 3);
        run -= take;
      }
    }
    for (; run > 0; run--) push(value, 0);
  }
  return pairs;
}

/**
 * A zlib stream's buffer for `bits` of deflate data, its header written. Not zeroed (Node's pool
 * serves small ones): every byte gets written, which `sealStream` checks.
 */
function openStream(bits: number): Buffer {
  const out = Buffer.allocUnsafe(2 + Math.ceil(bits / 8) + 4);
  out[0] = 0x78; // deflate, 32 KiB window
  out[1] = 0x01; // fastest-level hint; makes the header a multiple of 31
  return out;
}

/** Ends the stream `w` wrote into `openStream`'s buffer: checks it filled it as planned, appends the Adler-32 of `data`. */
function sealStream(w: BitWriter, data: Uint8Array): Uint8Array {
  const end = w.end();
  if (end + 4 !== w.out.length) throw new Error(`small-deflate: wrote ${end + 4} bytes, planned ${w.out.length}`);
  writeAdler32(w.out, end, data);
  return w.out;
}

class BitWriter {
  pos = 2;
  bits = 0;
  count = 0;
  constructor(readonly out: Uint8Array) {}
  put(value: number, n: number): void {
    this.bits |= value << this.count;
    this.count += n;
    while (this.count >= 8) {
      this.out[this.pos++] = this.bits & 0xff;
      this.bits >>>= 8;
      this.count -= 8;
    }
  }
  /** Pads to a byte boundary; returns the position after the last byte written. */
  end(): number {
    if (this.count > 0) this.out[this.pos++] = this.bits & 0xff;
    this.bits = 0;
    this.count = 0;
    return this.pos;
  }
}

function writeSymbols(w: BitWriter, count: number, lit: Uint8Array, litCode: Uint16Array, dist: Uint8Array, distCode: Uint16Array): void {
  // The hot loop keeps the writer's state in locals; at most 27 bits are pending between flushes.
  const out = w.out;
  let pos = w.pos;
  let bits = w.bits;
  let n = w.count;
  const lengths = symLength;
  const values = symValue;
  for (let k = 0; k < count; k++) {
    const length = lengths[k] as number;
    const value = values[k] as number;
    if (length === 0) {
      bits |= (litCode[value] as number) << n;
      n += lit[value] as number;
    } else {
      const li = lenIndex[length] as number;
      bits |= (litCode[257 + li] as number) << n;
      n += lit[257 + li] as number;
      bits |= (length - (LEN_BASE[li] as number)) << n;
      n += LEN_EXTRA[li] as number;
      while (n >= 8) {
        out[pos++] = bits & 0xff;
        bits >>>= 8;
        n -= 8;
      }
      const di = distIndex[value] as number;
      bits |= (distCode[di] as number) << n;
      n += dist[di] as number;
      while (n >= 8) {
        out[pos++] = bits & 0xff;
        bits >>>= 8;
        n -= 8;
      }
      bits |= (value - (DIST_BASE[di] as number)) << n;
      n += DIST_EXTRA[di] as number;
    }
    while (n >= 8) {
      out[pos++] = bits & 0xff;
      bits >>>= 8;
      n -= 8;
    }
  }
  w.pos = pos;
  w.bits = bits;
  w.count = n;
  w.put(litCode[256] as number, lit[256] as number);
}

interface HeaderPlan {
  hlit: number;
  hdist: number;
  /** Run-length pairs in `runs`. */
  pairs: number;
  hclen: number;
  /** Size of the block header in bits, BFINAL and BTYPE included. */
  bits: number;
}

/**
 * Plans a dynamic block's header for the first `hlit`/`hdist` code lengths: run-length codes them
 * (into `runs`) and builds the code-length code (`clLengths`).
 */
function planHeader(lit: Uint8Array, hlit: number, dist: Uint8Array, hdist: number): HeaderPlan {
  allLengths.set(lit.subarray(0, hlit), 0);
  allLengths.set(dist.subarray(0, hdist), hlit);
  const pairs = encodeRuns(allLengths, hlit + hdist);
  padTree(clFreq, 19);
  huffmanLengths(clFreq, 19, 7, clLengths);
  let hclen = 19;
  while (hclen > 4 && clLengths[CL_ORDER[hclen - 1] as number] === 0) hclen--;
  let bits = 17 + hclen * 3;
  for (let k = 0; k < pairs; k++) {
    const symbol = runs[k * 2] as number;
    bits += (clLengths[symbol] as number) + (symbol === 16 ? 2 : symbol === 17 ? 3 : symbol === 18 ? 7 : 0);
  }
  return { hlit, hdist, pairs, hclen, bits };
}

/** Writes the header of a final dynamic block as `planHeader` planned it. */
function writeDynamicHeader(w: BitWriter, plan: HeaderPlan): void {
  canonicalCodes(clLengths, 19, clCodes);
  w.put(1, 1); // final block
  w.put(2, 2); // dynamic Huffman
  w.put(plan.hlit - 257, 5);
  w.put(plan.hdist - 1, 5);
  w.put(plan.hclen - 4, 4);
  for (let k = 0; k < plan.hclen; k++) w.put(clLengths[CL_ORDER[k] as number] as number, 3);
  for (let k = 0; k < plan.pairs; k++) {
    const symbol = runs[k * 2] as number;
    w.put(clCodes[symbol] as number, clLengths[symbol] as number);
    if (symbol === 16) w.put(runs[k * 2 + 1] as number, 2);
    else if (symbol === 17) w.put(runs[k * 2 + 1] as number, 3);
    else if (symbol === 18) w.put(runs[k * 2 + 1] as number, 7);
  }
}

/** A complete zlib stream of `data` (at most SMALL_DEFLATE_LIMIT bytes). */
export function deflateSmall(data: Uint8Array): Uint8Array {
  if (data.length > SMALL_DEFLATE_LIMIT) throw new RangeError(`deflateSmall takes at most ${SMALL_DEFLATE_LIMIT} bytes`);
  if (data.length === 0) return deflateStored(data);
  litFreq.fill(0);
  distFreq.fill(0);
  const count = tokenize(data);
  litFreq[256] = 1;
  huffmanLengths(litFreq, 286, 15, litLengths);
  const padded = padTree(distFreq, 30);
  huffmanLengths(distFreq, 30, 15, distLengths);
  for (const symbol of padded) distFreq[symbol] = 0;
  let hlit = 286;
  while (hlit > 257 && litLengths[hlit - 1] === 0) hlit--;
  let hdist = 30;
  while (hdist > 1 && distLengths[hdist - 1] === 0) hdist--;
  const plan = planHeader(litLengths, hlit, distLengths, hdist);
  const dynamicBits = plan.bits + dataBits(litLengths, distLengths);
  const fixedBits = 3 + dataBits(fixedLit, fixedDist);
  const storedBytes = data.length + 5 * Math.ceil(data.length / 0xffff);
  const bestBits = Math.min(dynamicBits, fixedBits);
  if (Math.ceil(bestBits / 8) >= storedBytes) return deflateStored(data);

  const w = new BitWriter(openStream(bestBits));
  if (dynamicBits <= fixedBits) {
    canonicalCodes(litLengths, 286, litCodes);
    canonicalCodes(distLengths, 30, distCodes);
    writeDynamicHeader(w, plan);
    writeSymbols(w, count, litLengths, litCodes, distLengths, distCodes);
  } else {
    w.put(1, 1);
    w.put(1, 2); // fixed Huffman
    writeSymbols(w, count, fixedLit, fixedLitCodes, fixedDist, fixedDistCodes);
  }
  return sealStream(w, data);
}

/**
 * A Huffman table settled once from sample objects of one kind and sent as a dynamic block.
 * Objects of that kind (event commits: hex ids, base32 CIDs, fixed header words) all compress
 * about as well under one table, so a call skips building its own and only runs LZ77 and writes
 * symbols. Text (printable ASCII and newlines) always has codes; an object with other bytes gets
 * a table of its own (`deflateSmall`), and one the preset would not shrink is stored.
 */
export interface DeflatePreset {
  readonly litLengths: Uint8Array;
  readonly litCodes: Uint16Array;
  readonly distLengths: Uint8Array;
  readonly distCodes: Uint16Array;
  /** The block header from the BFINAL bit up to the first data symbol, as written at offset 2. */
  readonly header: Uint8Array;
  readonly tailBits: number;
  readonly tailCount: number;
}

/** Derives a preset from samples (deterministic: the same samples give the same table). */
export function deflatePreset(samples: readonly Uint8Array[]): DeflatePreset {
  // Printable ASCII, newline, every length and every distance up to 16 KiB have a code;
  // an object needing another symbol falls back to its own table.
  const lit = new Uint32Array(286).fill(1, 32, 127).fill(1, 256, 286);
  lit[10] = 1;
  const dist = new Uint32Array(30).fill(1, 0, 28);
  for (const sample of samples) {
    litFreq.fill(0);
    distFreq.fill(0);
    tokenize(sample.subarray(0, SMALL_DEFLATE_LIMIT));
    for (let k = 0; k < 286; k++) bump(lit, k, litFreq[k] as number);
    for (let k = 0; k < 30; k++) bump(dist, k, distFreq[k] as number);
  }
  bump(lit, 256, samples.length);
  const litLengthsOut = new Uint8Array(286);
  const distLengthsOut = new Uint8Array(30);
  padTree(dist, 30);
  huffmanLengths(lit, 286, 15, litLengthsOut);
  huffmanLengths(dist, 30, 15, distLengthsOut);
  let hdist = 30;
  while (hdist > 1 && distLengthsOut[hdist - 1] === 0) hdist--;
  const litCodesOut = new Uint16Array(286);
  const distCodesOut = new Uint16Array(30);
  canonicalCodes(litLengthsOut, 286, litCodesOut);
  canonicalCodes(distLengthsOut, 30, distCodesOut);
  const w = new BitWriter(new Uint8Array(2 + 320));
  writeDynamicHeader(w, planHeader(litLengthsOut, 286, distLengthsOut, hdist));
  return {
    litLengths: litLengthsOut,
    litCodes: litCodesOut,
    distLengths: distLengthsOut,
    distCodes: distCodesOut,
    header: w.out.slice(2, w.pos),
    tailBits: w.bits,
    tailCount: w.count,
  };
}

/** `deflateSmall` with a preset table (at most SMALL_DEFLATE_LIMIT bytes). */
export function deflateWithPreset(data: Uint8Array, preset: DeflatePreset): Uint8Array {
  if (data.length > SMALL_DEFLATE_LIMIT) throw new RangeError(`deflateWithPreset takes at most ${SMALL_DEFLATE_LIMIT} bytes`);
  litFreq.fill(0);
  distFreq.fill(0);
  const count = tokenize(data);
  litFreq[256] = 1;
  for (let k = 0; k < 256; k++) if ((litFreq[k] as number) > 0 && preset.litLengths[k] === 0) return deflateSmall(data);
  for (let k = 0; k < 30; k++) if ((distFreq[k] as number) > 0 && preset.distLengths[k] === 0) return deflateSmall(data);
  const bits = preset.header.length * 8 + preset.tailCount + dataBits(preset.litLengths, preset.distLengths);
  if (Math.ceil(bits / 8) >= data.length + 5) return deflateStored(data);
  const w = new BitWriter(openStream(bits));
  w.out.set(preset.header, 2);
  w.pos = 2 + preset.header.length;
  w.bits = preset.tailBits;
  w.count = preset.tailCount;
  writeSymbols(w, count, preset.litLengths, preset.litCodes, preset.distLengths, preset.distCodes);
  return sealStream(w, data);
}

/**
 * Objects this small are stored: zlib's framing and the random bytes of the ids inside trees
 * leave little to gain, and storing is a copy.
 */
const STORE_BELOW = 128;

/**
 * The zlib stream git stores for an object's bytes; `level` 0 stores (like core.compression=0).
 * Any other level picks the small-object encoder up to SMALL_DEFLATE_LIMIT, zlib at that level
 * beyond it.
 */
export function deflateObject(bytes: Uint8Array, level = 1): Uint8Array {
  if (level === 0 || bytes.length < STORE_BELOW) return deflateStored(bytes);
  return bytes.length <= SMALL_DEFLATE_LIMIT ? deflateSmall(bytes) : deflateSync(bytes, { level });
}
