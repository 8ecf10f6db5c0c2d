import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, pairedRounds, spread } from '../../bench/row.js';

test('paired rounds take turns at going first and give the median of the rounds’ ratios', () => {
  const order: string[] = [];
  // Each run takes as long as the machine's speed at its turn: the machine slows down steadily.
  let clock = 0;
  const run = (name: string, work: number) => () => {
    order.push(name);
    clock++;
    return { name, seconds: work * clock };
  };
  const paired = pairedRounds(5, run('one', 2), run('two', 1));
  assert.deepEqual(order, ['one', 'two', 'two', 'one', 'one', 'two', 'two', 'one', 'one', 'two']);
  assert.equal(paired.a.length, 5);
  assert.ok(paired.a.every((r) => r.name === 'one') && paired.b.every((r) => r.name === 'two'));
  const ratios = paired.a.map((r, i) => r.seconds / (paired.b[i] as { seconds: number }).seconds);
  assert.equal(paired.ratio, median(ratios));
  assert.deepEqual(paired.ratios, ratios);
  assert.equal(spread([1.5, 1.31, 1.726]), 'rounds 1.31-1.73x');
  // Rounds A-first read above 2 on a slowing machine (B runs later), B-first ones below; a ratio
  // of the two settings' medians reads 2 only by chance of the drift.
  assert.ok(ratios.some((r) => r > 2) && ratios.some((r) => r < 2));
});
