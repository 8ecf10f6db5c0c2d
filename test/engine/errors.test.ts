import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { exitCodeFor, GatosError } from '../../engine/errors.js';

const root = new URL('../../../', import.meta.url);

test('every error code is documented in docs/errors.md with its exit status', () => {
  const source = readFileSync(new URL('engine/errors.ts', root), 'utf8');
  const doc = readFileSync(new URL('docs/errors.md', root), 'utf8');
  const codes = [...source.matchAll(/^ {2}([A-Za-z_]+): '(?:usage|input|conflict|corrupt|failure|internal)',$/gm)].map(
    (m) => m[1] as string,
  );
  assert.ok(codes.length > 50, 'the KINDS table was found');
  for (const code of codes) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is not in docs/errors.md`);
    const documented = Number(row.split('|')[2]?.trim());
    assert.equal(documented, exitCodeFor(new GatosError(code, '')), `${code}: docs say exit ${documented}`);
  }
});
