import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DeltaBaseCache } from '../../../engine/git/delta-base-cache.js';
import type { GitObject, ObjectType } from '../../../engine/git/ports.js';

const same = (a: GitObject | undefined, b: GitObject): boolean =>
  a !== undefined && a.type === b.type && Buffer.from(a.body).equals(Buffer.from(b.body));

describe('delta base cache (ring buffer)', () => {
  test('what it returns is exactly what was stored, whatever was evicted meanwhile (property)', () => {
    const object = fc.record({
      type: fc.constantFrom<ObjectType>('commit', 'tree', 'blob', 'tag'),
      body: fc.uint8Array({ maxLength: 700 }),
    });
    const op = fc.oneof(fc.record({ set: fc.integer({ min: 0, max: 40 }), object }), fc.record({ get: fc.integer({ min: 0, max: 40 }) }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4096 }), fc.array(op, { maxLength: 300 }), (maxBytes, ops) => {
        const cache = new DeltaBaseCache(maxBytes);
        const stored = new Map<number, GitObject[]>();
        for (const step of ops) {
          if ('get' in step) {
            const found = cache.get(step.get);
            if (found)
              assert.ok(
                (stored.get(step.get) ?? []).some((o) => same(found, o)),
                `offset ${step.get}`,
              );
            continue;
          }
          const absent = cache.get(step.set) === undefined;
          cache.set(step.set, step.object);
          stored.set(step.set, [...(stored.get(step.set) ?? []), step.object]);
          // A record that fits in a quarter of the ring is kept, at least until the next one.
          if (absent && 16 + step.object.body.length + 7 <= maxBytes / 4) assert.ok(same(cache.get(step.set), step.object));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('first in, first out: the newest records fill the ring, the oldest go first', () => {
    const cache = new DeltaBaseCache(64 * 100);
    const object = (i: number): GitObject => ({ type: 'blob', body: Buffer.alloc(48, i) });
    // Each record takes 64 bytes (16 of header): 100 fit.
    for (let i = 0; i < 250; i++) cache.set(i * 10, object(i));
    for (let i = 0; i < 150; i++) assert.equal(cache.get(i * 10), undefined, `record ${i} was evicted`);
    for (let i = 150; i < 250; i++) assert.ok(same(cache.get(i * 10), object(i)), `record ${i} is kept`);
    // What get returns is a copy: the ring reusing its bytes cannot change it.
    const kept = cache.get(2490) as GitObject;
    for (let i = 250; i < 400; i++) cache.set(i * 10, object(i));
    assert.ok(same(kept, object(249)));
  });
});
