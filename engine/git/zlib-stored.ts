/**
 * zlib streams of "stored" (uncompressed) deflate blocks — what `core.compression=0` makes git
 * write. Every zlib reader (git included) accepts them; producing one costs a copy and an
 * Adler-32 instead of a deflate state setup, which is what bulk fixture writes need.
 */
const MAX_BLOCK = 0xffff;
const ADLER_MOD = 65521;
const ADLER_NMAX = 5552; // the most bytes before the sums must be reduced

export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  const length = data.length;
  let i = 0;
  while (i < length) {
    const end = Math.min(i + ADLER_NMAX, length);
    // Four bytes per step: the sums stay exact and the loop overhead drops.
    for (; i + 4 <= end; i += 4) {
      a += data[i] as number;
      b += a;
      a += data[i + 1] as number;
      b += a;
      a += data[i + 2] as number;
      b += a;
      a += data[i + 3] as number;
      b += a;
    }
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** Writes the Adler-32 of `data` big-endian at `at`: the trailer of every zlib stream. */
export function writeAdler32(out: Uint8Array, at: number, data: Uint8Array): void {
  const sum = adler32(data);
  out[at] = sum >>> 24;
  out[at + 1] = (sum >>> 16) & 0xff;
  out[at + 2] = (sum >>> 8) & 0xff;
  out[at + 3] = sum & 0xff;
}

/** The Adler-32 stored big-endian at `at` (a zlib stream's trailer), or -1 when the stream ends before it. */
export function readAdler32(stream: Uint8Array, at: number): number {
  if (at + 4 > stream.length) return -1;
  return (
    (((stream[at] as number) << 24) |
      ((stream[at + 1] as number) << 16) |
      ((stream[at + 2] as number) << 8) |
      (stream[at + 3] as number)) >>>
    0
  );
}

export function deflateStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  // Every byte is written below: no zeroing, and Node's pool serves small ones (a `new
  // Uint8Array` is an ArrayBuffer of its own, ~0.8 µs at a few hundred bytes).
  const out = Buffer.allocUnsafe(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78; // deflate, 32 KiB window
  out[1] = 0x01; // no dictionary, fastest; (0x78 * 256 + 0x01) % 31 === 0
  let pos = 2;
  for (let block = 0; block < blocks; block++) {
    const start = block * MAX_BLOCK;
    const length = Math.min(MAX_BLOCK, data.length - start);
    out[pos] = block === blocks - 1 ? 1 : 0; // BFINAL, BTYPE=00
    out[pos + 1] = length & 0xff;
    out[pos + 2] = length >>> 8;
    out[pos + 3] = ~length & 0xff;
    out[pos + 4] = (~length >>> 8) & 0xff;
    out.set(data.subarray(start, start + length), pos + 5);
    pos += 5 + length;
  }
  writeAdler32(out, pos, data);
  return out;
}

/**
 * The payload of a zlib stream made only of stored blocks, or undefined when the stream uses
 * compression (or is not one we can take apart safely). Lets readers skip zlib for such data.
 */
export function inflateStored(stream: Uint8Array, size: number): Uint8Array | undefined {
  if (stream.length < 11 || stream[0] !== 0x78 || ((stream[0] << 8) | (stream[1] as number)) % 31 !== 0 || (stream[1] as number) & 0x20)
    return undefined;
  // One stored block holding everything: hand back a view, no copy.
  const first = (stream[3] as number) | ((stream[4] as number) << 8);
  if (((stream[2] as number) & 0x07) === 1 && first === size && stream.length >= 2 + 5 + size + 4) {
    const check = (stream[5] as number) | ((stream[6] as number) << 8);
    const view = stream.subarray(7, 7 + size);
    if ((first ^ 0xffff) === check && readAdler32(stream, 7 + size) === adler32(view)) return view;
  }
  // A compressed first block: not ours to read (and nothing allocated for it).
  if (((stream[2] as number) & 0x06) !== 0) return undefined;
  const out = new Uint8Array(size);
  let pos = 2;
  let written = 0;
  for (;;) {
    const header = stream[pos] as number;
    if ((header & 0x06) !== 0 || pos + 5 > stream.length) return undefined; // not a stored block
    const length = (stream[pos + 1] as number) | ((stream[pos + 2] as number) << 8);
    const check = (stream[pos + 3] as number) | ((stream[pos + 4] as number) << 8);
    if ((length ^ 0xffff) !== check || written + length > size || pos + 5 + length > stream.length) return undefined;
    out.set(stream.subarray(pos + 5, pos + 5 + length), written);
    written += length;
    pos += 5 + length;
    if (header & 1) break;
  }
  if (written !== size) return undefined;
  return readAdler32(stream, pos) === adler32(out) ? out : undefined;
}
