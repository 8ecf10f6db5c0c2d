import fc from 'fast-check';

/** Bytes with structure, up to `maxSize`: random noise, small alphabets, repeats at random distances, cycles. */
export function structuredBytes(maxSize: number): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.integer({ min: 0, max: maxSize }), fc.integer({ min: 1, max: 256 }), fc.nat(), fc.integer({ min: 0, max: 3 }))
    .map(([size, alphabet, seed, mode]) => {
      let state = seed >>> 0 || 1;
      const next = (): number => {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        return state >>> 0;
      };
      const out = new Uint8Array(size);
      for (let i = 0; i < size; i++) {
        if (mode === 0) out[i] = next() & 0xff;
        else if (mode === 1) out[i] = next() % alphabet;
        else if (mode === 2) out[i] = i > 0 && next() % 8 !== 0 ? (out[i - 1 - (next() % Math.min(i, 300))] as number) : next() & 0xff;
        else out[i] = 65 + (i % alphabet);
      }
      return out;
    });
}
