/**
 * zlib streams of small objects, read in JavaScript. Node's `inflateSync` builds a stream object
 * and a zlib state with its 32 KiB window per call — a fixed cost that dominates for the
 * 100-1000-byte commits, trees and envelopes a GATOS repository is made of. This decoder keeps
 * its tables between calls and writes straight into an output of the size the object's header
 * gives.
 *
 * It answers only when sure: a stream it does not take (a preset dictionary, invalid codes, a
 * length or Adler-32 that does not match) gives `undefined`, and the caller hands the stream to
 * zlib, which reads whatever zlib reads and names what is wrong. Data after the stream is
 * ignored (a pack entry is followed by the next one).
 *
 * @example
 *   const body = inflateSmall(compressed, size) ?? inflateSync(compressed);
 */
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
import { adler32, readAdler32 } from './zlib-stored.js';

/** Objects up to this size are decoded here; zlib is faster beyond (measured per size). */
export const SMALL_INFLATE_LIMIT = 1024;

/** Codes up to this many bits are decoded by one table lookup, longer ones bit by bit. */
const ROOT_BITS = 9;
/** Bits a Huffman code may need (deflate's longest code). */
const MAX_CODE_BITS = 15;

/** While a code is built: the next code of each length, and where its symbols go in `symbols`. */
const nextCode = new Uint16Array(MAX_CODE_BITS + 1);
const firstOfLength = new Uint16Array(MAX_CODE_BITS + 1);

/** A canonical Huffman code: a table for short codes, counts and sorted symbols for long ones. */
class HuffmanCode {
  /** Indexed by the next ROOT_BITS (or fewer) input bits: (symbol << 4) | length, 0 = not short. */
  private readonly table = new Uint16Array(1 << ROOT_BITS);
  private readonly counts = new Uint16Array(MAX_CODE_BITS + 1);
  private readonly symbols: Uint16Array;
  private mask = 0;

  constructor(symbolCount: number) {
    this.symbols = new Uint16Array(symbolCount);
  }

  /**
   * Builds the code of `count` symbols with their lengths (none 0), in increasing symbol order:
   * small objects use few of a block's 286 literal/length symbols, so only those are visited.
   * False when the lengths over-subscribe the code space.
   */
  build(used: Uint16Array, lengths: Uint8Array, count: number): boolean {
    const { counts, table } = this;
    counts.fill(0);
    for (let i = 0; i < count; i++) {
      const len = lengths[i] as number;
      counts[len] = (counts[len] as number) + 1;
    }
    // Canonical codes: the first code of each length, checking the lengths fit the code space.
    let left = 1;
    let longest = 0;
    let code = 0;
    for (let len = 1; len <= MAX_CODE_BITS; len++) {
      const n = counts[len] as number;
      left = left * 2 - n;
      if (left < 0) return false;
      if (n !== 0) longest = len;
      nextCode[len] = code;
      code = (code + n) << 1;
    }
    const rootBits = Math.min(longest, ROOT_BITS);
    const size = 1 << rootBits;
    this.mask = size - 1;
    // Entries no short code reaches stay 0 (decoded bit by bit): only a code that is incomplete
    // or has long codes leaves any.
    const full = left === 0 && longest <= ROOT_BITS;
    if (!full) table.fill(0, 0, size);
    for (let i = 0; i < count; i++) {
      const len = lengths[i] as number;
      if (len > rootBits) continue;
      const value = nextCode[len] as number;
      nextCode[len] = value + 1;
      const entry = ((used[i] as number) << 4) | len;
      for (let at = (reverse15[value] as number) >> (MAX_CODE_BITS - len); at < size; at += 1 << len) table[at] = entry;
    }
    if (!full) {
      // Symbols sorted by code length, then value: what canonical decoding walks.
      firstOfLength[1] = 0;
      for (let len = 1; len < MAX_CODE_BITS; len++) firstOfLength[len + 1] = (firstOfLength[len] as number) + (counts[len] as number);
      for (let i = 0; i < count; i++) {
        const len = lengths[i] as number;
        const at = firstOfLength[len] as number;
        this.symbols[at] = used[i] as number;
        firstOfLength[len] = at + 1;
      }
    }
    return true;
  }

  /** The symbol whose code starts the low bits of `bits` (15 valid): (symbol << 4) | length, or -1. */
  decode(bits: number): number {
    const entry = this.table[bits & this.mask] as number;
    return entry !== 0 ? entry : this.decodeLong(bits);
  }

  /** Canonical decoding, one bit at a time: codes longer than the table, and invalid ones (-1). */
  private decodeLong(bits: number): number {
    const counts = this.counts;
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAX_CODE_BITS; len++) {
      code |= bits & 1;
      bits >>= 1;
      const count = counts[len] as number;
      if (code - count < first) return ((this.symbols[index + code - first] as number) << 4) | len;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    return -1;
  }
}

/** A code given by every symbol's length (0 = unused). */
function codeOf(lengths: Uint8Array): HuffmanCode {
  const used = new Uint16Array(lengths.length);
  const usedLengths = new Uint8Array(lengths.length);
  let count = 0;
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    if (lengths[symbol] === 0) continue;
    used[count] = symbol;
    usedLengths[count++] = lengths[symbol] as number;
  }
  const code = new HuffmanCode(lengths.length);
  code.build(used, usedLengths, count);
  return code;
}

const fixedLit = codeOf(FIXED_LIT_LENGTHS);
const fixedDist = codeOf(FIXED_DIST_LENGTHS);
// A dynamic block's codes, rebuilt per block from its used symbols and their lengths.
const blockLit = new HuffmanCode(288);
const blockDist = new HuffmanCode(30);
const lengthCode = new HuffmanCode(19);
const litUsed = new Uint16Array(286);
const litLengths = new Uint8Array(286);
const distUsed = new Uint16Array(30);
const distLengths = new Uint8Array(30);
const lengthCodeUsed = new Uint16Array(19);
const lengthCodeLengths = new Uint8Array(19);
/** The code-length code's lengths, by symbol, as a block header sends them. */
const sentLengths = new Uint8Array(19);

/**
 * The `size` bytes a zlib stream holds, or undefined when this decoder does not take the stream
 * (see the module comment): then zlib must read it.
 */
export function inflateSmall(stream: Uint8Array, size: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(size);
  return inflateInto(stream, out) === size ? out : undefined;
}

/**
 * The bytes of a zlib stream whose length is not known beforehand (a loose object's header is
 * inside its stream), or undefined when they exceed `limit` or the stream is not taken.
 */
export function inflateUpTo(stream: Uint8Array, limit: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(limit);
  const length = inflateInto(stream, out);
  return length < 0 ? undefined : out.subarray(0, length);
}

/** Decodes a zlib stream into `out`: the number of bytes, or -1 (not taken, or longer than `out`). */
function inflateInto(stream: Uint8Array, out: Uint8Array): number {
  const end = stream.length;
  const size = out.length;
  const cmf = stream[0] as number;
  const flags = stream[1] as number;
  // Deflate with a window of at most 32 KiB, a valid header check, no preset dictionary.
  if (end < 7 || (cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flags) % 31 !== 0 || (flags & 0x20) !== 0) return -1;
  let pos = 2;
  // Input bits not yet used, lowest first. Past the end of the input zero bytes are fed; the
  // trailer check below fails if any of them was used. The state is kept in locals and each
  // refill written out where it is needed: the same decoder with a bit-reader object was 30-75%
  // slower per object (V8 kept the reader's fields in memory).
  let bits = 0;
  let count = 0;
  let written = 0;
  let last = 0;
  do {
    while (count < 3) {
      bits |= (pos < end ? (stream[pos] as number) : 0) << count;
      pos++;
      count += 8;
    }
    last = bits & 1;
    const type = (bits >> 1) & 3;
    bits >>= 3;
    count -= 3;
    if (type === 0) {
      // Stored: the rest of this byte is padding; whole bytes still held go back to the input.
      pos -= count >> 3;
      bits = 0;
      count = 0;
      if (pos + 4 > end) return -1;
      const length = (stream[pos] as number) | ((stream[pos + 1] as number) << 8);
      const check = (stream[pos + 2] as number) | ((stream[pos + 3] as number) << 8);
      if ((length ^ 0xffff) !== check || pos + 4 + length > end || written + length > size) return -1;
      out.set(stream.subarray(pos + 4, pos + 4 + length), written);
      written += length;
      pos += 4 + length;
      continue;
    }
    let lit = fixedLit;
    let dist = fixedDist;
    if (type === 2) {
      while (count < 14) {
        bits |= (pos < end ? (stream[pos] as number) : 0) << count;
        pos++;
        count += 8;
      }
      const litCount = (bits & 31) + 257;
      const distCount = ((bits >> 5) & 31) + 1;
      const lengthCount = ((bits >> 10) & 15) + 4;
      bits >>= 14;
      count -= 14;
      if (litCount > 286 || distCount > 30) return -1;
      sentLengths.fill(0);
      for (let i = 0; i < lengthCount; i++) {
        while (count < 3) {
          bits |= (pos < end ? (stream[pos] as number) : 0) << count;
          pos++;
          count += 8;
        }
        sentLengths[CL_ORDER[i] as number] = bits & 7;
        bits >>= 3;
        count -= 3;
      }
      let used = 0;
      for (let symbol = 0; symbol < 19; symbol++) {
        if (sentLengths[symbol] === 0) continue;
        lengthCodeUsed[used] = symbol;
        lengthCodeLengths[used++] = sentLengths[symbol] as number;
      }
      if (!lengthCode.build(lengthCodeUsed, lengthCodeLengths, used)) return -1;
      // The literal/length code's lengths, then the distance code's, as one sequence.
      const total = litCount + distCount;
      let litN = 0;
      let distN = 0;
      let previous = -1;
      let ends = false;
      for (let i = 0; i < total; ) {
        // A code-length code is at most 7 bits, with at most 7 extra bits.
        while (count < 14) {
          bits |= (pos < end ? (stream[pos] as number) : 0) << count;
          pos++;
          count += 8;
        }
        const entry = lengthCode.decode(bits);
        if (entry < 0) return -1;
        bits >>= entry & 15;
        count -= entry & 15;
        const symbol = entry >> 4;
        let value = symbol;
        let repeat = 1;
        if (symbol === 16) {
          if (previous < 0) return -1;
          value = previous;
          repeat = 3 + (bits & 3);
          bits >>= 2;
          count -= 2;
        } else if (symbol === 17) {
          value = 0;
          repeat = 3 + (bits & 7);
          bits >>= 3;
          count -= 3;
        } else if (symbol === 18) {
          value = 0;
          repeat = 11 + (bits & 127);
          bits >>= 7;
          count -= 7;
        }
        if (i + repeat > total) return -1;
        previous = value;
        if (value === 0) {
          i += repeat;
          continue;
        }
        for (const stop = i + repeat; i < stop; i++) {
          if (i < litCount) {
            if (i === 256) ends = true;
            litUsed[litN] = i;
            litLengths[litN++] = value;
          } else {
            distUsed[distN] = i - litCount;
            distLengths[distN++] = value;
          }
        }
      }
      // A block that cannot end is not one zlib wrote.
      if (!ends) return -1;
      if (!blockLit.build(litUsed, litLengths, litN) || !blockDist.build(distUsed, distLengths, distN)) return -1;
      lit = blockLit;
      dist = blockDist;
    } else if (type !== 1) {
      return -1;
    }
    for (;;) {
      // A literal/length code of up to 15 bits and up to 5 extra length bits.
      while (count < MAX_CODE_BITS + 5) {
        bits |= (pos < end ? (stream[pos] as number) : 0) << count;
        pos++;
        count += 8;
      }
      const entry = lit.decode(bits);
      if (entry < 0) return -1;
      bits >>= entry & 15;
      count -= entry & 15;
      const symbol = entry >> 4;
      if (symbol < 256) {
        if (written === size) return -1;
        out[written++] = symbol;
        continue;
      }
      if (symbol === 256) break;
      const lengthIndex = symbol - 257;
      if (lengthIndex >= 29) return -1;
      const lengthBits = LEN_EXTRA[lengthIndex] as number;
      const length = (LEN_BASE[lengthIndex] as number) + (bits & ((1 << lengthBits) - 1));
      bits >>= lengthBits;
      count -= lengthBits;
      // A distance code of up to 15 bits, then up to 13 extra bits.
      while (count < MAX_CODE_BITS) {
        bits |= (pos < end ? (stream[pos] as number) : 0) << count;
        pos++;
        count += 8;
      }
      const distEntry = dist.decode(bits);
      if (distEntry < 0) return -1;
      bits >>= distEntry & 15;
      count -= distEntry & 15;
      const distCode = distEntry >> 4;
      if (distCode >= 30) return -1;
      const distBits = DIST_EXTRA[distCode] as number;
      while (count < distBits) {
        bits |= (pos < end ? (stream[pos] as number) : 0) << count;
        pos++;
        count += 8;
      }
      const distance = (DIST_BASE[distCode] as number) + (bits & ((1 << distBits) - 1));
      bits >>= distBits;
      count -= distBits;
      if (distance > written || written + length > size) return -1;
      // Byte by byte: a match may overlap the bytes it produces.
      for (let from = written - distance, stop = written + length; written < stop; ) out[written++] = out[from++] as number;
    }
  } while (last === 0);
  // The Adler-32 follows at the next byte boundary.
  return readAdler32(stream, pos - (count >> 3)) === adler32(out.subarray(0, written)) ? written : -1;
}
