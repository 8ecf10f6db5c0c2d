import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { initRepository, openRepository } from '../../../engine/git/repository.js';
import { deflateObject, deflatePreset, deflateSmall, deflateWithPreset, SMALL_DEFLATE_LIMIT } from '../../../engine/git/small-deflate.js';
import { structuredBytes } from './helpers/bytes.js';

describe('small-object deflate', () => {
  test('zlib inflates every stream back to its input (property)', () => {
    fc.assert(
      fc.property(structuredBytes(SMALL_DEFLATE_LIMIT), (data) => {
        const z = deflateSmall(data);
        assert.deepEqual(new Uint8Array(inflateSync(z)), data);
        // Never larger than storing the bytes (2-byte header, block framing, Adler-32).
        assert.ok(z.length <= data.length + 11, `${z.length} bytes for ${data.length}`);
      }),
      { numRuns: 400 },
    );
  });

  test('edge sizes and long runs round-trip', () => {
    for (const size of [0, 1, 2, 3, 4, 5, 127, 128, 258, 259, 1000, SMALL_DEFLATE_LIMIT]) {
      for (const fill of [0, 7]) {
        const data = new Uint8Array(size).fill(fill);
        assert.deepEqual(new Uint8Array(inflateSync(deflateSmall(data))), data, `size ${size} fill ${fill}`);
      }
    }
    assert.throws(() => deflateSmall(new Uint8Array(SMALL_DEFLATE_LIMIT + 1)), RangeError);
  });

  test('compresses commit-like text about as well as zlib level 1', () => {
    const author = 'user:alice <alice@user.gatos.invalid> 1795619304 +0000';
    const text = Buffer.from(
      `tree ${'ab12'.repeat(10)}\nparent ${'cd34'.repeat(10)}\nauthor ${author}\ncommitter ${author}\n\ntick 01M89M0CXMHZJTPQPV1FXS62JE\n\nEvent-CID: bafyr4ighfcol66rp3udbmjyw7bkg4xyxxgactimjuwl6b5wymzmkw42dmy\n`,
    );
    const ours = deflateSmall(text).length;
    const zlib = deflateSync(text, { level: 1 }).length;
    assert.ok(ours <= zlib * 1.1, `${ours} bytes vs zlib's ${zlib}`);
  });

  test('a preset table codes any input: its own symbols, others by fallback, never larger than stored (property)', () => {
    const sample = (i: number): Buffer => Buffer.from(`tree ${'ab12'.repeat(10)}\nparent ${'cd34'.repeat(10)}\nsubject ${i}\n`);
    const preset = deflatePreset([sample(1), sample(2), sample(3)]);
    assert.deepEqual(deflatePreset([sample(1), sample(2), sample(3)]), preset, 'same samples, same table');
    const text = Buffer.from(`tree ${'ef56'.repeat(10)}\nparent ${'0789'.repeat(10)}\nauthor Zoë ~ {x} 9\n`.repeat(3));
    for (const data of [sample(9), text, Buffer.alloc(0), Buffer.from('\u00e9t\u00e9 \u0001\u0002 binary')]) {
      assert.deepEqual(inflateSync(deflateWithPreset(data, preset)), data);
    }
    fc.assert(
      fc.property(structuredBytes(SMALL_DEFLATE_LIMIT), (data) => {
        const z = deflateWithPreset(data, preset);
        assert.deepEqual(new Uint8Array(inflateSync(z)), data);
        assert.ok(z.length <= data.length + 11, `${z.length} bytes for ${data.length}`);
      }),
      { numRuns: 200 },
    );
    // On text like its samples it stays close to a table of the object's own.
    assert.ok(deflateWithPreset(text, preset).length <= deflateSmall(text).length * 1.15);
  });

  test('deflateObject stores tiny objects and level 0, and hands large ones to zlib', () => {
    const large = Buffer.alloc(SMALL_DEFLATE_LIMIT * 2, 'gatos ');
    for (const [bytes, level] of [
      [Buffer.from('tiny'), 1],
      [Buffer.alloc(500, 'x'), 0],
      [Buffer.alloc(500, 'x'), 1],
      [large, 1],
    ] as const) {
      assert.deepEqual(inflateSync(deflateObject(bytes, level)), bytes);
    }
    assert.equal(deflateObject(Buffer.alloc(500, 'x'), 0).length, 500 + 11);
  });

  test('git reads packs and loose objects written with it (fsck --strict)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatos-deflate-'));
    try {
      initRepository(dir);
      const repo = openRepository(dir);
      const bodies = Array.from({ length: 50 }, (_, i) => Buffer.from(`object ${i} ${'payload '.repeat(i * 7)}`));
      const oids = repo.objects.writeMany(bodies.map((body) => ({ type: 'blob' as const, body })));
      const loose = repo.objects.write('blob', Buffer.from('loose object '.repeat(40)));
      repo.close();
      const fsck = spawnSync('git', ['--git-dir', join(dir, '.git'), 'fsck', '--strict'], { encoding: 'utf8' });
      assert.equal(fsck.status, 0, fsck.stderr);
      for (const [i, oid] of [...oids.entries()].filter(([i]) => i % 10 === 3)) {
        const shown = spawnSync('git', ['--git-dir', join(dir, '.git'), 'cat-file', 'blob', oid]);
        assert.deepEqual(shown.stdout, bodies[i]);
      }
      const shown = spawnSync('git', ['--git-dir', join(dir, '.git'), 'cat-file', 'blob', loose], { encoding: 'utf8' });
      assert.equal(shown.stdout, 'loose object '.repeat(40));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
