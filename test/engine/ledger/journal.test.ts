import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { decodeDagCbor, eventCid } from '../../../engine/codec/dag-cbor.js';
import { GatosError } from '../../../engine/errors.js';
import { findTreeEntry, parseCommit } from '../../../engine/git/object-codec.js';
import { openRepository } from '../../../engine/git/repository.js';
import { type EventEnvelope, envelopeBytes } from '../../../engine/ledger/envelope.js';
import { appendEvents, type Ledger } from '../../../engine/ledger/journal.js';
import { listEvents, readEvent } from '../../../engine/ledger/journal-read.js';
import { createKey, loadPrivateKey, signBytes, verifyBytes } from '../../../engine/ledger/keys.js';
import { addActorKey, updateTrust } from '../../../engine/ledger/trust.js';
import { ComputePool } from '../../../engine/scheduler/pool.js';
import { fsckStrict, git, scratch } from '../../helpers/git.js';

const { repo: newRepo, dir: newDir } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;
const CLOCK = () => 1_764_000_000_000;

before(() => blake3Ready());

/** A repository with keys for alice and bob published in its trust graph. */
function setup(): { dir: string; ledger: Ledger } {
  const dir = newRepo();
  const repo = openRepository(dir);
  const ledger: Ledger = { objects: repo.objects, refs: repo.refs, keyDir: join(newDir(), 'keys'), clock: CLOCK };
  for (const actor of ['user:alice', 'user:bob']) {
    const { publicKey } = createKey(ledger.keyDir, actor);
    updateTrust(ledger.objects, ledger.refs, CLOCK, `add ${actor}`, (graph) => addActorKey(graph, actor, publicKey, ['@leads']));
  }
  return { dir, ledger };
}

function snapshot(dir: string): string {
  return git(dir, ['for-each-ref']) + git(dir, ['count-objects', '-v']);
}

describe('envelopes', () => {
  const envelope: EventEnvelope = {
    type: 'deploy',
    ulid: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
    actor: 'user:alice',
    payload: { n: 1, tags: ['a'] },
    policy_root: '0'.repeat(40),
    sig_alg: 'ed25519',
    ts: '2025-11-24T00:00:00Z',
  };

  test('canonical bytes are stable, round-trip, and the Event-CID recomputes', () => {
    const a = envelopeBytes(envelope);
    const b = envelopeBytes({ ...envelope, payload: { tags: ['a'], n: 1 } });
    assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes));
    assert.equal(a.cid, b.cid);
    assert.deepEqual(decodeDagCbor(a.bytes), envelope);
    assert.equal(eventCid(a.bytes), a.cid);
  });

  test('signatures verify, and a flipped bit fails', () => {
    const keyDir = join(newDir(), 'keys');
    const { publicKey } = createKey(keyDir, 'user:alice');
    const { bytes } = envelopeBytes(envelope);
    const signature = signBytes(loadPrivateKey(keyDir, 'user:alice'), bytes);
    assert.ok(verifyBytes(publicKey, bytes, signature));
    const flipped = Buffer.from(bytes);
    flipped[10] = (flipped[10] as number) ^ 1;
    assert.equal(verifyBytes(publicKey, flipped, signature), false);
    const badSig = Buffer.from(signature);
    badSig[0] = (badSig[0] as number) ^ 1;
    assert.equal(verifyBytes(publicKey, bytes, badSig), false);
  });
});

describe('appendEvents', () => {
  test('appends signed events on a linear journal that git accepts', async () => {
    const { dir, ledger } = setup();
    const results = await appendEvents(ledger, [
      { ns: 'ops', type: 'deploy', actor: 'user:alice', payload: { n: 1 } },
      { ns: 'ops', type: 'deploy', actor: 'user:alice', payload: { n: 2 } },
      { ns: 'gatos/jobs', type: 'job', actor: 'user:bob', payload: {} },
    ]);
    assert.equal(results.length, 3);
    assert.equal(git(dir, ['rev-list', '--count', 'refs/gatos/journal/ops/user/alice']).trim(), '2');
    assert.equal(git(dir, ['rev-list', '--merges', '--count', '--all']).trim(), '0');
    assert.equal(git(dir, ['rev-parse', 'refs/gatos/journal/gatos/jobs/user/bob']).trim(), results[2]?.commit);
    fsckStrict(dir);
    const shown = readEvent(ledger.objects, ledger.refs, results[1]?.commit as string);
    assert.ok(shown.cid_ok && shown.signature_ok);
    assert.deepEqual(shown.envelope.payload, { n: 2 });
    assert.equal(shown.event_cid, results[1]?.event_cid);
    assert.equal(
      git(dir, ['log', '-1', '--format=%(trailers:key=Event-CID,valueonly)', 'refs/gatos/journal/ops/user/alice']).trim(),
      results[1]?.event_cid,
    );
    assert.deepEqual(
      listEvents(ledger.objects, ledger.refs, 'ops').map((e) => e.commit),
      [results[1]?.commit, results[0]?.commit],
    );
  });

  test('a repeated ULID returns the existing commit instead of appending twice', async () => {
    const { dir, ledger } = setup();
    const input = { ns: 'ops', type: 'deploy', actor: 'user:alice', payload: {}, ulid: '01KB0000000000000000000000' };
    const [first] = await appendEvents(ledger, [input]);
    const [again] = await appendEvents(ledger, [{ ...input, payload: { different: true } }]);
    assert.equal(again?.commit, first?.commit);
    assert.equal(again?.existing, true);
    assert.equal(git(dir, ['rev-list', '--count', 'refs/gatos/journal/ops/user/alice']).trim(), '1');
  });

  test('a tampered envelope fails its checks', async () => {
    const { ledger } = setup();
    const [result] = await appendEvents(ledger, [{ ns: 'ops', type: 'deploy', actor: 'user:alice', payload: { n: 1 } }]);
    // Re-sign nothing: swap bob into the trust graph as alice's only key, the signature must fail.
    const { publicKey } = createKey(join(newDir(), 'other'), 'user:alice');
    updateTrust(ledger.objects, ledger.refs, CLOCK, 'rotate', (graph) => {
      graph.actors['user:alice'] = { keys: [publicKey] };
    });
    assert.equal(readEvent(ledger.objects, ledger.refs, result?.commit as string).signature_ok, false);
    const commit = parseCommit(ledger.objects.read(result?.commit as string).body);
    assert.ok(findTreeEntry(ledger.objects.read(commit.tree).body, 'event'));
  });

  test('bad input is refused with typed errors and leaves the repository untouched', async () => {
    const { dir, ledger } = setup();
    await appendEvents(ledger, [{ ns: 'ops', type: 'deploy', actor: 'user:alice', payload: {} }]);
    const before = snapshot(dir);
    const cases: Array<[string, Parameters<typeof appendEvents>[1][number]]> = [
      ['unknown_actor', { ns: 'ops', type: 't', actor: 'user:carol', payload: {} }],
      ['invalid_ulid', { ns: 'ops', type: 't', actor: 'user:alice', payload: {}, ulid: 'not-a-ulid' }],
      ['invalid_argument', { ns: 'ops', type: 't', actor: 'alice', payload: {} }],
      ['invalid_ref_name', { ns: '../x', type: 't', actor: 'user:alice', payload: {} }],
      ['invalid_argument', { ns: 'ops', type: 't', actor: 'user:alice', payload: [1] }],
      ['invalid_argument', { ns: 'ops', type: 't', actor: 'user:alice', payload: { f: 0.5 } }],
      ['invalid_argument', { ns: 'ops', type: 'bad type', actor: 'user:alice', payload: {} }],
    ];
    for (const [code, input] of cases) {
      // A valid event in the same batch must not be appended either.
      await assert.rejects(appendEvents(ledger, [{ ns: 'ops', type: 'ok', actor: 'user:alice', payload: {} }, input]), isCode(code), code);
    }
    rmSync(join(ledger.keyDir, 'user', 'bob.pem'));
    await assert.rejects(appendEvents(ledger, [{ ns: 'ops', type: 't', actor: 'user:bob', payload: {} }]), isCode('key_not_found'));
    assert.equal(snapshot(dir), before);
    fsckStrict(dir);
  });

  test('a large batch sealed on the worker pool gives valid, linear journals', async () => {
    const { dir, ledger } = setup();
    const pool = new ComputePool({ threads: 2 });
    try {
      const inputs = Array.from({ length: 600 }, (_, i) => ({
        ns: 'pool',
        type: 'n',
        actor: i % 2 ? 'user:alice' : 'user:bob',
        payload: { i },
      }));
      const results = await appendEvents(ledger, inputs, { pool });
      assert.equal(new Set(results.map((r) => r.commit)).size, 600);
      for (const result of [results[0], results[299], results[599]]) {
        const shown = readEvent(ledger.objects, ledger.refs, result?.commit as string);
        assert.ok(shown.cid_ok && shown.signature_ok);
        assert.equal(shown.event_cid, result?.event_cid);
      }
      assert.equal(git(dir, ['rev-list', '--count', 'refs/gatos/journal/pool/user/alice']).trim(), '300');
      assert.equal(git(dir, ['rev-list', '--merges', '--count', '--all']).trim(), '0');
      fsckStrict(dir);
    } finally {
      await pool.close();
    }
  });

  test('the same batch with the same keys gives byte-identical packs, sealed on the pool or in this thread', async () => {
    const keyDir = join(newDir(), 'keys');
    const keys = ['user:alice', 'user:bob'].map((actor) => [actor, createKey(keyDir, actor).publicKey] as const);
    const inputs = Array.from({ length: 400 }, (_, i) => ({
      ns: 'same',
      type: 'n',
      actor: i % 3 ? 'user:alice' : 'user:bob',
      payload: { i, note: 'x'.repeat(i % 7) },
      ulid: `01KB${String(i).padStart(22, '0')}`,
    }));
    const packsAfter = async (pool?: ComputePool): Promise<{ packs: string[]; commits: string[] }> => {
      const dir = newRepo();
      const repo = openRepository(dir);
      const ledger: Ledger = { objects: repo.objects, refs: repo.refs, keyDir, clock: CLOCK };
      for (const [actor, publicKey] of keys)
        updateTrust(ledger.objects, ledger.refs, CLOCK, `add ${actor}`, (g) => addActorKey(g, actor, publicKey));
      const before = new Set(readdirSync(join(dir, '.git/objects/pack')));
      const results = await appendEvents(ledger, inputs, pool ? { pool } : {});
      fsckStrict(dir);
      const packs = readdirSync(join(dir, '.git/objects/pack')).filter((f) => f.endsWith('.pack') && !before.has(f));
      return { packs, commits: results.map((r) => r.commit) };
    };
    const pool = new ComputePool({ threads: 2 });
    try {
      const pooled = await packsAfter(pool);
      const inThread = await packsAfter();
      assert.equal(pooled.packs.length, 1);
      assert.deepEqual(inThread.commits, pooled.commits);
      // A pack is named by the checksum of its bytes.
      assert.deepEqual(inThread.packs, pooled.packs);
    } finally {
      await pool.close();
    }
  });

  test('one batch: one transaction over several journals', async () => {
    const { dir, ledger } = setup();
    const inputs = Array.from({ length: 300 }, (_, i) => ({
      ns: i % 2 ? 'a' : 'b',
      type: 'n',
      actor: i % 3 ? 'user:alice' : 'user:bob',
      payload: { i },
    }));
    const results = await appendEvents(ledger, inputs);
    assert.equal(new Set(results.map((r) => r.commit)).size, 300);
    assert.equal(Number(git(dir, ['rev-list', '--count', '--glob=refs/gatos/journal']).trim()), 300);
    fsckStrict(dir);
  });
});

describe('concurrent appends from several processes', () => {
  test('lose nothing and keep the journal linear', async () => {
    const { dir, ledger } = setup();
    const helper = fileURLToPath(new URL('./helpers/append-loop.js', import.meta.url));
    const perProcess = 15;
    const run = () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [helper, join(dir, '.git'), ledger.keyDir, 'user:alice', String(perProcess)]);
        let err = '';
        child.stderr.on('data', (chunk) => {
          err += chunk;
        });
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(err))));
      });
    await Promise.all([run(), run(), run()]);
    const ref = 'refs/gatos/journal/race/user/alice';
    assert.equal(Number(git(dir, ['rev-list', '--count', ref]).trim()), 3 * perProcess);
    assert.equal(git(dir, ['rev-list', '--merges', '--count', ref]).trim(), '0');
    assert.equal(git(dir, ['rev-list', '--max-parents=0', ref]).trim().split('\n').length, 1);
    fsckStrict(dir);
  });
});
