/**
 * The fixed parts of the deflate format (RFC 1951), shared by the small-object encoder and
 * decoder: length and distance codes with their extra bits, the order code-length code lengths
 * are sent in, the fixed Huffman code, and bit reversal (deflate sends Huffman codes starting
 * from their most significant bit into a stream read from the least significant bit).
 */

/** Length codes 257..285: base length and extra bits. */
export const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
export const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/** Distance codes 0..29: base distance and extra bits. */
export const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
  24577,
];
export const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** The order in which code-length code lengths are sent (RFC 1951 §3.2.7). */
export const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Code lengths of the fixed Huffman code (RFC 1951 §3.2.6): literals/lengths, then distances. */
export const FIXED_LIT_LENGTHS = new Uint8Array(288).fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
export const FIXED_DIST_LENGTHS = new Uint8Array(30).fill(5);

/** 15-bit values with their bits in reverse order: `reverse15[code] >>> (15 - length)`. */
export const reverse15 = new Uint16Array(1 << 15);
for (let v = 1; v < 1 << 15; v++) reverse15[v] = ((reverse15[v >>> 1] as number) >>> 1) | ((v & 1) << 14);
