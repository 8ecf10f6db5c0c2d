import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { canonicalText, type Literal, type Predicate, predicateDigest } from '../../dsl/ast.js';
import { compileFilter } from '../../dsl/evaluate.js';
import { parseFilter, parseFilterJson, parseFilterText } from '../../dsl/parse.js';
import { planJournals, planTopics } from '../../dsl/plan.js';
import { blake3Ready } from '../../engine/codec/blake3.js';
import { seededRandom } from '../../engine/codec/random.js';
import { GatosError } from '../../engine/errors.js';
import { type Row, tableDef } from '../../exporter/tables.js';

const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;
const events = tableDef('events');

before(() => blake3Ready());

function row(extra: Partial<Row> = {}): Row {
  return {
    id: 'bafy1',
    ns: 'gatos/jobs',
    kind: 'add',
    actor: 'user:alice',
    ulid: '01KB0000000000000000000000',
    ts: Date.parse('2025-06-01T00:00:00Z') / 1000,
    payload: '{"n":5,"tags":{"env":"prod"},"ok":true}',
    commit_id: 'c1',
    created_ts: 0,
    updated_ts: 0,
    ...extra,
  };
}

describe('filter syntax', () => {
  test('the issue example parses; text and JSON forms of one filter share a canonical form and digest', () => {
    const text = parseFilter('ns = "gatos/jobs" and ts >= 2025-01-01 and kind in ("add","sub") and payload.n > 3');
    assert.equal(canonicalText(text), 'ns = "gatos/jobs" and ts >= 2025-01-01 and kind in ("add", "sub") and payload.n > 3');
    const a = parseFilterText('ns = "gatos/jobs" and ts >= 2025-01-01');
    const b = parseFilterJson('{"ns": "gatos/jobs", "ts": {"gte": "2025-01-01"}}');
    assert.equal(predicateDigest(a), predicateDigest(b));
    assert.equal(canonicalText(parseFilter('(a = 1 or b = 2) and not (c = 3.50)')), '(a = 1 or b = 2) and not c = 3.5');
    assert.equal(canonicalText(parseFilter('a = 1 AND (b = 2 and c = 3)')), 'a = 1 and b = 2 and c = 3');
    assert.equal(predicateDigest(parseFilter('ns == "x"')), predicateDigest(parseFilter('ns = "x"')));
  });

  test('errors name line and column and give a hint', () => {
    assert.throws(
      () => parseFilter('ns = "x" and\nkind ~ 1'),
      (err: unknown) =>
        err instanceof GatosError && err.code === 'invalid_filter' && /line 2, column 6/.test(err.message) && /hint/.test(err.message),
    );
    assert.throws(
      () => parseFilter('ns = '),
      (err: unknown) => err instanceof GatosError && /ends too early/.test(err.message),
    );
    // One line saying what could come next, in the filter's own words (not the parser's token names).
    const says = (text: string, message: string) =>
      assert.throws(
        () => parseFilter(text),
        (err: unknown) => err instanceof GatosError && err.message.includes(`: ${message} (hint:`),
        text,
      );
    says('ns = ', 'the filter ends too early: expected a "string", a date (2025-01-01), a number, true, false or null');
    says('ns "a"', `expected in, =, !=, <=, >=, < or >, found '"a"'`);
    says('(ns = "a"', 'the filter ends too early: expected )');
    says('payload. = 1', "expected a column name, found '='");
    says('ns = "a" ns = "b"', "unexpected 'ns' after a complete comparison (join comparisons with and / or)");
    says('ns = "a" or or', "expected not, ( or a column name, found 'or'");
    assert.throws(() => parseFilter('ts >= 2025-13-45'), isCode('invalid_filter'));
    // Dates are checked field by field (Date.parse would roll 2025-02-30 over to March 2nd).
    says('ts >= 2025-02-30', 'not a date: 2025-02-30');
    for (const text of [
      'ts > 2025-02-29',
      'ts < 2025-04-31',
      'ts = 2025-01-01T24:00:00Z',
      'ts = 2025-01-01T12:60:00Z',
      'ts = 2025-01-01T12:00:60Z',
    ]) {
      assert.throws(() => parseFilter(text), isCode('invalid_filter'), text);
    }
    assert.throws(
      () => parseFilter('ns = "a" and\n  ts >= 2025-02-30'),
      (err: unknown) => err instanceof GatosError && /line 2, column 9/.test(err.message) && /YYYY-MM-DD/.test(err.message),
    );
    assert.throws(
      () => parseFilter('{"ts": {"gte": "2025-02-29"}}'),
      (err: unknown) => err instanceof GatosError && err.code === 'invalid_filter' && /ts: not a date: 2025-02-29/.test(err.message),
    );
    assert.equal(canonicalText(parseFilter('ts >= 2024-02-29')), 'ts >= 2024-02-29');
    assert.equal(canonicalText(parseFilter('payload.at > 0099-12-31T23:59:59Z')), 'payload.at > 0099-12-31T23:59:59Z');
    assert.throws(() => parseFilter('{"ns": {"like": "x"}}'), isCode('invalid_filter'));
    assert.throws(() => parseFilter('{}'), isCode('invalid_filter'));
  });
});

describe('evaluation', () => {
  const matches = (text: string, r: Row = row()) => compileFilter(parseFilter(text), events)(r);

  test('strings, numbers, dates against timestamps, JSON paths, in, not, or', () => {
    assert.equal(matches('ns = "gatos/jobs"'), true);
    assert.equal(matches('ns != "gatos/jobs"'), false);
    assert.equal(matches('ts >= 2025-01-01 and ts < 2025-06-01T00:00:01Z'), true);
    assert.equal(matches('ts > 1748736000'), false);
    assert.equal(matches('payload.n > 3 and payload.n <= 5'), true);
    assert.equal(matches('payload.tags.env = "prod"'), true);
    assert.equal(matches('payload.ok = true'), true);
    assert.equal(matches('payload.n = "5"'), false, 'a JSON number is not a string');
    assert.equal(matches('payload.missing = 1'), false);
    assert.equal(matches('payload.missing != 1'), true);
    assert.equal(matches('kind in ("sub", "add")'), true);
    assert.equal(matches('not kind in ("sub")'), true);
    assert.equal(matches('kind = "x" or actor = "user:alice"'), true);
    assert.equal(matches('actor < "user:b"'), true, 'byte order');
  });

  test('dates keep their fraction of a second: exact against JSON values, refused against whole-second timestamps', () => {
    assert.equal(canonicalText(parseFilter('payload.at >= 2025-06-01T00:00:00.500Z')), 'payload.at >= 2025-06-01T00:00:00.5Z');
    assert.equal(canonicalText(parseFilter('ts >= 2025-06-01T00:00:00.000Z')), 'ts >= 2025-06-01T00:00:00Z');
    assert.equal(matches('ts >= 2025-06-01T00:00:00.000Z'), true);
    const at = (value: string) => row({ payload: JSON.stringify({ at: value }) });
    assert.equal(matches('payload.at >= 2025-06-01T00:00:00.5Z', at('2025-06-01T00:00:00.5Z')), true);
    assert.equal(matches('payload.at > 2025-06-01T00:00:00.5Z', at('2025-06-01T00:00:00.5Z')), false);
    assert.throws(
      () => compileFilter(parseFilter('ts >= 2025-06-01T00:00:00.5Z'), events),
      (err: unknown) => err instanceof GatosError && err.code === 'UNSUPPORTED_FILTER' && /whole seconds/.test(err.message),
    );
  });

  test('what cannot be evaluated exactly is UNSUPPORTED_FILTER before any row is read', () => {
    for (const text of ['bogus = 1', 'ns.x = 1', 'ts = "yesterday"', 'ns = 3', 'ts = 1.5', 'kind >= 2025-01-01']) {
      assert.throws(() => compileFilter(parseFilter(text), events), isCode('UNSUPPORTED_FILTER'), text);
    }
  });

  test('fuzz: canonical text parses back to the same predicate and the same verdicts', () => {
    const random = seededRandom(2024);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const literalFor = (column: string): Literal =>
      column === 'ts'
        ? pick<Literal>([
            { type: 'date', value: '2025-03-01' },
            { type: 'number', value: String(1_740_000_000 + Math.floor(random() * 1e7)) },
          ])
        : column === 'payload.n'
          ? { type: 'number', value: String(Math.floor(random() * 10) - 2) }
          : { type: 'string', value: pick(['add', 'sub', 'gatos/jobs', 'ops', 'user:alice', 'user:bob', 'é', 'a"b']) };
    const leaf = (): Predicate => {
      const column = pick(['ns', 'kind', 'actor', 'ts', 'payload.n']);
      if (random() < 0.25) return { kind: 'in', path: column.split('.'), values: [literalFor(column), literalFor(column)] };
      return { kind: 'cmp', path: column.split('.'), op: pick(['=', '!=', '<', '<=', '>', '>='] as const), value: literalFor(column) };
    };
    const tree = (depth: number): Predicate => {
      if (depth === 0 || random() < 0.3) return leaf();
      const r = random();
      if (r < 0.2) return { kind: 'not', arg: tree(depth - 1) };
      return { kind: r < 0.6 ? 'and' : 'or', args: [tree(depth - 1), tree(depth - 1), ...(random() < 0.3 ? [tree(depth - 1)] : [])] };
    };
    const rows = Array.from({ length: 20 }, () =>
      row({
        ns: pick(['gatos/jobs', 'ops']),
        kind: pick(['add', 'sub']),
        actor: pick(['user:alice', 'user:bob']),
        ts: 1_735_000_000 + Math.floor(random() * 2e7),
        payload: JSON.stringify({ n: Math.floor(random() * 8) - 1 }),
      }),
    );
    for (let i = 0; i < 300; i++) {
      const original = tree(3);
      const text = canonicalText(original);
      const reparsed = parseFilter(text);
      assert.equal(canonicalText(reparsed), text);
      const a = compileFilter(original, events);
      const b = compileFilter(reparsed, events);
      for (const r of rows) assert.equal(b(r), a(r), `${text} on ${JSON.stringify(r)}`);
    }
  });
});

describe('pushdown', () => {
  const heads = ['refs/gatos/journal/ops/user/alice', 'refs/gatos/journal/ops/user/bob', 'refs/gatos/journal/shop/user/alice'].map(
    (name) => ({
      name,
      oid: '1'.repeat(40),
    }),
  );

  test('top-level ns and actor conjuncts prune journal refs; an or prunes nothing', () => {
    const plan = planJournals(heads, 'events', parseFilter('ns = "ops" and actor = "user:bob" and payload.n > 1'));
    assert.deepEqual(
      plan.read.map((r) => r.name),
      ['refs/gatos/journal/ops/user/bob'],
    );
    assert.equal(plan.pruned.length, 2);
    assert.equal(planJournals(heads, 'events', parseFilter('ns = "ops" or kind = "x"')).pruned.length, 0);
    assert.equal(planJournals(heads, 'events', parseFilter('ns in ("shop", "nope")')).read.length, 1);
    assert.deepEqual(planTopics(['a', 'b'], parseFilter('topic = "b"')).read, ['b']);
  });
});
