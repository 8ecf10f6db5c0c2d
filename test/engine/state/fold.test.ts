import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { canonicalBytes, parseJson } from '../../../engine/codec/canonical-json.js';
import { rootFromProof } from '../../../engine/codec/merkle.js';
import { GatosError } from '../../../engine/errors.js';
import { findTreeEntry, parseCommit, parseTree, serializeCommit, serializeTree } from '../../../engine/git/object-codec.js';
import type { Oid } from '../../../engine/git/ports.js';
import { openRepository } from '../../../engine/git/repository.js';
import type { Ledger } from '../../../engine/ledger/context.js';
import { appendEvents, type EventInput } from '../../../engine/ledger/journal.js';
import { bisectState } from '../../../engine/state/bisect.js';
import { readCheckpoint, stateRef } from '../../../engine/state/checkpoint.js';
import { type FoldResult, fold } from '../../../engine/state/fold.js';
import { applyEvents, type FoldEvent, fromScaled, toScaled } from '../../../engine/state/fold-engine.js';
import { checkFoldSpec, type FoldSpec, parseFoldSpec } from '../../../engine/state/fold-spec.js';
import { resolvePrivate } from '../../../engine/state/pointers.js';
import { leafOf, nodeProof, readStateTree } from '../../../engine/state/state-tree.js';
import { verifyCheckpoint } from '../../../engine/state/verify.js';
import { fsckStrict, git, scratch } from '../../helpers/git.js';
import { trustedLedger } from '../../helpers/ledger.js';
import { referenceSchema } from '../../helpers/schemas.js';

const { repo: newRepo, dir: newDir } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;
const CLOCK = () => 1_764_000_000_000;

before(() => blake3Ready());

interface Setup {
  dir: string;
  ctx: Ledger;
  gitDir: string;
  store: string;
  run(spec?: FoldSpec, full?: boolean): Promise<FoldResult>;
}

function setup(): Setup {
  const dir = newRepo();
  const repo = openRepository(dir);
  const ctx = trustedLedger(repo, join(newDir(), 'keys'), CLOCK);
  const store = join(newDir(), 'private');
  return {
    dir,
    ctx,
    gitDir: repo.gitDir,
    store,
    run: (spec, full) => fold(ctx, 'shop', { gitDir: repo.gitDir, store, ...(spec ? { spec } : {}), ...(full ? { full } : {}) }),
  };
}

const SPEC = checkFoldSpec({
  version: 1,
  math: { scale: 2 },
  rules: [
    {
      on: 'order.*',
      ops: [
        { op: 'increment', path: 'orders/count' },
        { op: 'increment', path: 'revenue/{payload.sku}', from: 'payload.amount' },
        { op: 'set', path: 'customers/{actor}', from: 'payload.card' },
        { op: 'append', path: 'log', from: 'ulid' },
      ],
    },
    { on: 'order.refunded', ops: [{ op: 'delete', path: 'customers/{actor}' }] },
  ],
  derived: [{ path: 'revenue/total', sum: ['revenue/apple', 'revenue/pear'] }],
  private: [{ path: 'customers/*/*', capability: 'gatos-key://v1/aes-256-gcm/shop' }],
});

const ulid = (n: number) => `01KB${String(n).padStart(22, '0')}`;
const order = (n: number, actor: string, sku: string, amount: string): EventInput => ({
  ns: 'shop',
  type: 'order.placed',
  actor,
  ulid: ulid(n),
  payload: { sku, amount, card: `card-secret-${n}` },
});

describe('fold specs', () => {
  const bad: Array<[string, unknown]> = [
    ['unknown op', { version: 1, rules: [{ on: 'x', ops: [{ op: 'multiply', path: 'a' }] }] }],
    ['float value', { version: 1, rules: [{ on: 'x', ops: [{ op: 'set', path: 'a', value: 1.5 }] }] }],
    ['float increment', { version: 1, rules: [{ on: 'x', ops: [{ op: 'increment', path: 'a', by: 0.5 }] }] }],
    [
      'derived cycle',
      {
        version: 1,
        rules: [],
        derived: [
          { path: 'a', sum: ['b'] },
          { path: 'b', sum: ['a'] },
        ],
      },
    ],
    ['dot-dot path', { version: 1, rules: [{ on: 'x', ops: [{ op: 'delete', path: 'a/../b' }] }] }],
    ['unknown source', { version: 1, rules: [{ on: 'x', ops: [{ op: 'set', path: 'a/{secret}', value: 1 }] }] }],
    [
      'derived written by an op',
      { version: 1, rules: [{ on: 'x', ops: [{ op: 'delete', path: 'a' }] }], derived: [{ path: 'a', sum: ['b'] }] },
    ],
    ['set without a value', { version: 1, rules: [{ on: 'x', ops: [{ op: 'set', path: 'a' }] }] }],
    ['bad capability', { version: 1, rules: [], private: [{ path: 'a', capability: 'nope' }] }],
    ['version 2', { version: 2, rules: [] }],
    ['unknown field', { version: 1, rules: [], extra: true }],
  ];
  for (const [name, spec] of bad) test(name, () => assert.throws(() => checkFoldSpec(spec), isCode('invalid_fold_spec')));

  test('YAML specs parse; a YAML float is refused', () => {
    assert.equal(
      parseFoldSpec('version: 1\nrules:\n  - on: a\n    ops: [{ op: increment, path: n, by: "1.5" }]\nmath: { scale: 1 }\n').rules.length,
      1,
    );
    assert.throws(
      () => parseFoldSpec('version: 1\nrules:\n  - on: a\n    ops: [{ op: increment, path: n, by: 1.5 }]\n'),
      isCode('invalid_fold_spec'),
    );
  });

  test('fixed-point math is exact; mismatched kinds are skipped and counted', () => {
    assert.equal(toScaled('1.5', 2), 150n);
    assert.equal(toScaled('1.555', 2), undefined);
    assert.equal(fromScaled(-5n, 2), '-0.05');
    assert.equal(fromScaled(2n ** 60n, 0), '1152921504606846976');
    const spec = checkFoldSpec({
      version: 1,
      math: { scale: 2 },
      rules: [{ on: '*', ops: [{ op: 'increment', path: 'n', from: 'payload.x' }] }],
    });
    const state = new Map<string, unknown>();
    const stats = { events: 0, ops: 0, skipped: 0 };
    const event = (x: unknown): FoldEvent => ({
      commit: '',
      ref: '',
      ns: '',
      actor: 'user:a',
      ulid: ulid(1),
      type: 't',
      ts: '',
      payload: { x },
    });
    applyEvents(state, [event('0.10'), event('0.20'), event(1), event('abc'), event('0.001')], spec, stats);
    assert.equal(state.get('n'), '1.30');
    assert.equal(stats.skipped, 2);
  });
});

describe('folding', () => {
  test('checkpoint trailers, PoF schema, private nodes outside Git, node proofs, verify', async () => {
    const s = setup();
    await appendEvents(s.ctx, [order(1, 'user:alice', 'apple', '2.50'), order(2, 'user:bob', 'pear', '1.25')]);
    const result = await s.run(SPEC);
    assert.equal(result.events, 2);
    const checkpoint = readCheckpoint(s.ctx.objects, result.commit);
    for (const key of [
      'State-Root',
      'Ledger-Head',
      'Policy-Root',
      'Policy-Code-Root',
      'Fold-Engine',
      'Fold-Root',
      'Fold-Version',
      'Fold-Math',
    ])
      assert.ok(
        checkpoint.trailers.some((t) => t.key === key),
        key,
      );
    assert.equal(git(s.dir, ['show', `${result.commit}:state/revenue/total.json`]), '"3.75"');
    assert.equal(git(s.dir, ['show', `${result.commit}:state/orders/count.json`]), '"2.00"');
    // Plaintext never enters the state: no object of the checkpoint or its proof holds a card number.
    const reachable = git(s.dir, ['rev-list', '--objects', stateRef('shop'), 'refs/gatos/audit/proofs/folds/shop'])
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[0])
      .join('\n');
    const contents = git(s.dir, ['cat-file', '--batch'], `${reachable}\n`);
    assert.ok(contents.includes('opaque_pointer') && !contents.includes('card-secret'), 'a private value reached the state');
    const nodes = readStateTree(s.ctx.objects, checkpoint.stateTree as Oid, checkpoint.spec);
    const alice = nodes.find((n) => n.path === 'customers/user/alice');
    assert.ok(alice?.private);
    const pointer = alice?.stored as { digest: string };
    assert.ok(referenceSchema('privacy/opaque_pointer.schema.json')(pointer));
    assert.match(Buffer.from(resolvePrivate(pointer.digest, s.store)).toString('utf8'), /card-secret/);
    // One node proven against State-Root without the others.
    const proof = nodeProof(nodes, 'revenue/total');
    const root = rootFromProof(leafOf('revenue/total', canonicalBytes('3.75')), proof?.steps ?? []);
    assert.equal(`blake3:${Buffer.from(root).toString('hex')}`, checkpoint.stateRoot);
    const proofJson = git(s.dir, [
      'show',
      `${readCheckpoint(s.ctx.objects, result.commit).trailers.find((t) => t.key === 'Proof-Commit')?.value}:proof.json`,
    ]);
    const validate = referenceSchema('state/proof_of_fold_envelope.schema.json');
    assert.ok(validate(JSON.parse(proofJson)), JSON.stringify(validate.errors));
    assert.equal((await verifyCheckpoint(s.ctx, result.commit, s.gitDir)).ok, true);
    fsckStrict(s.dir);
  });

  test('two folds give byte-identical trees; an equivalent interleaving of journals gives the same root', async () => {
    const a = setup();
    const b = setup();
    await appendEvents(a.ctx, [order(1, 'user:alice', 'apple', '1.00')]);
    await appendEvents(a.ctx, [order(2, 'user:bob', 'pear', '2.00')]);
    await appendEvents(a.ctx, [order(3, 'user:alice', 'pear', '3.00')]);
    // Same events, appended in another order across the two journals.
    await appendEvents(b.ctx, [order(2, 'user:bob', 'pear', '2.00')]);
    await appendEvents(b.ctx, [order(1, 'user:alice', 'apple', '1.00'), order(3, 'user:alice', 'pear', '3.00')]);
    const spec = { ...SPEC, private: [] } as FoldSpec;
    const first = await a.run(spec);
    const again = await a.run(spec, true);
    assert.equal(again.tree, first.tree);
    assert.equal(again.state_root, first.state_root);
    const other = await b.run(spec);
    assert.equal(other.state_root, first.state_root);
    assert.equal(other.tree, first.tree);
  });

  test('incremental == full, also when a late event forces a full fold', async () => {
    const s = setup();
    await appendEvents(s.ctx, [order(10, 'user:alice', 'apple', '1.00'), order(11, 'user:alice', 'pear', '2.00')]);
    await s.run(SPEC);
    await appendEvents(s.ctx, [order(12, 'user:bob', 'apple', '4.00')]);
    const incremental = await s.run(SPEC);
    assert.equal(incremental.incremental, true);
    assert.equal(incremental.new_events, 1);
    const full = await s.run(SPEC, true);
    assert.equal(full.tree, incremental.tree);
    assert.equal((await s.run(SPEC)).unchanged, true);
    // bob's journal gets an event that sorts before the last one folded: no exact increment exists.
    await appendEvents(s.ctx, [order(5, 'user:bob', 'pear', '8.00')]);
    const late = await s.run(SPEC);
    assert.equal(late.incremental, false);
    assert.equal(late.events, 4);
    assert.equal((await s.run(SPEC, true)).tree, late.tree);
    assert.equal((await verifyCheckpoint(s.ctx, late.commit, s.gitDir)).ok, true);
    fsckStrict(s.dir);
  });

  test('tampering with a state blob, a trailer or the proof makes verify fail, naming the check', async () => {
    const s = setup();
    await appendEvents(s.ctx, [order(1, 'user:alice', 'apple', '1.00'), order(2, 'user:bob', 'pear', '2.00')]);
    const { commit } = await s.run(SPEC);
    const failing = async (oid: Oid) => (await verifyCheckpoint(s.ctx, oid, s.gitDir)).checks.filter((c) => !c.ok).map((c) => c.name);
    const parsed = parseCommit(s.ctx.objects.read(commit).body);
    // A state blob: revenue/total says 9.99.
    const root = parseTree(s.ctx.objects.read(parsed.tree).body);
    const stateDir = findTreeEntry(s.ctx.objects.read(parsed.tree).body, 'state')?.oid as Oid;
    const revenue = findTreeEntry(s.ctx.objects.read(stateDir).body, 'revenue')?.oid as Oid;
    const revenueTree = parseTree(s.ctx.objects.read(revenue).body).map((e) =>
      e.name === 'total.json' ? { ...e, oid: s.ctx.objects.write('blob', Buffer.from('"9.99"')) } : e,
    );
    const stateTree = parseTree(s.ctx.objects.read(stateDir).body).map((e) =>
      e.name === 'revenue' ? { ...e, oid: s.ctx.objects.write('tree', serializeTree(revenueTree)) } : e,
    );
    const tree = s.ctx.objects.write(
      'tree',
      serializeTree(root.map((e) => (e.name === 'state' ? { ...e, oid: s.ctx.objects.write('tree', serializeTree(stateTree)) } : e))),
    );
    const blobTampered = s.ctx.objects.write('commit', serializeCommit({ ...parsed, tree }));
    assert.deepEqual(await failing(blobTampered), ['state_tree']);
    // A trailer: Fold-Events off by one.
    const trailerTampered = s.ctx.objects.write(
      'commit',
      serializeCommit({ ...parsed, message: parsed.message.replace('Fold-Events: 2', 'Fold-Events: 3') }),
    );
    assert.deepEqual(await failing(trailerTampered), ['ledger_window']);
    // The proof: another Proof-Of-Fold digest.
    const proofTampered = s.ctx.objects.write(
      'commit',
      serializeCommit({
        ...parsed,
        message: parsed.message.replace(/Proof-Of-Fold: blake3:[0-9a-f]{64}/, `Proof-Of-Fold: blake3:${'0'.repeat(64)}`),
      }),
    );
    assert.deepEqual(await failing(proofTampered), ['proof_digest']);
  });

  test('a wrong-digest fetch is refused', async () => {
    const s = setup();
    await appendEvents(s.ctx, [order(1, 'user:alice', 'apple', '1.00')]);
    const { commit } = await s.run(SPEC);
    const checkpoint = readCheckpoint(s.ctx.objects, commit);
    const node = readStateTree(s.ctx.objects, checkpoint.stateTree as Oid, checkpoint.spec).find((n) => n.private);
    const digest = (node?.stored as { digest: string } | undefined)?.digest ?? '';
    writeFileSync(join(s.store, digest.slice(7)), 'forged');
    assert.throws(() => resolvePrivate(digest, s.store), isCode('pointer_digest_mismatch'));
    assert.throws(() => resolvePrivate(`blake3:${'1'.repeat(64)}`, s.store), isCode('pointer_unreachable'));
  });

  test('the default spec folds any journal; bisect names the first bad event', async () => {
    const s = setup();
    const good = await (async () => {
      await appendEvents(s.ctx, [order(1, 'user:alice', 'apple', '1.00'), order(2, 'user:alice', 'apple', '1.00')]);
      return s.run(SPEC);
    })();
    await appendEvents(s.ctx, [
      order(3, 'user:bob', 'apple', '1.00'),
      order(4, 'user:alice', 'apple', '1.00'),
      order(5, 'user:bob', 'pear', '1.00'),
    ]);
    const bad = await s.run(SPEC);
    const result = await bisectState(s.ctx, s.gitDir, 'shop', good.commit, bad.commit, async (json) => {
      const state = parseJson(json) as Record<string, string>;
      return Number(state['orders/count'] ?? '0') < 4;
    });
    assert.equal(result.first_bad.ulid, ulid(4));
    assert.equal(result.candidates, 3);
    const plain = setup();
    await appendEvents(plain.ctx, [{ ns: 'shop', type: 'note.added', actor: 'user:alice', payload: { text: 'hi' } }]);
    const folded = await plain.run();
    assert.equal(git(plain.dir, ['show', `${folded.commit}:state/note.added.json`]), '{"text":"hi"}');
    assert.equal(plain.ctx.refs.resolve(stateRef('shop')), folded.commit);
  });
});
