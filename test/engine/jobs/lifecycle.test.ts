import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { parseJson } from '../../../engine/codec/canonical-json.js';
import { GatosError } from '../../../engine/errors.js';
import { findTreeEntry, parseCommit, parseTree, serializeCommit, serializeTree } from '../../../engine/git/object-codec.js';
import type { ObjectStore, Oid } from '../../../engine/git/ports.js';
import { openRepository } from '../../../engine/git/repository.js';
import { enqueue } from '../../../engine/jobs/enqueue.js';
import { EVENTS_TOPIC } from '../../../engine/jobs/events.js';
import { cancel, claimJob, finishAttempt, heartbeat, type Lease, releaseLease } from '../../../engine/jobs/lifecycle.js';
import { checkManifest } from '../../../engine/jobs/manifest.js';
import { attemptRecord, verifyJob } from '../../../engine/jobs/proof.js';
import type { RunOutcome } from '../../../engine/jobs/run-process.js';
import { hexOf, type Job, jobRefs, jobView, readJob } from '../../../engine/jobs/store.js';
import { runWorker, workerIdentity } from '../../../engine/jobs/worker.js';
import type { Ledger } from '../../../engine/ledger/context.js';
import { readMessages } from '../../../engine/messages/read.js';
import { fsckStrict, git, scratch } from '../../helpers/git.js';
import { referenceSchema } from '../../helpers/schemas.js';

const { repo: newRepo, dir: newDir } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;

before(() => blake3Ready());

function setup(clock?: () => number): { dir: string; ctx: Ledger; advance: (ms: number) => void } {
  const dir = newRepo();
  const repo = openRepository(dir);
  let now = Date.parse('2026-11-25T10:00:00Z');
  const ctx: Ledger = { objects: repo.objects, refs: repo.refs, keyDir: newDir(), clock: clock ?? (() => now) };
  return {
    dir,
    ctx,
    advance: (ms) => {
      now += ms;
    },
  };
}

async function oneJob(ctx: Ledger, command: string[], options: { maxAttempts?: number; timeout?: number } = {}): Promise<Job> {
  const [receipt] = await enqueue(ctx, [checkManifest({ command, timeout: options.timeout ?? 30 })], {
    maxAttempts: options.maxAttempts ?? 3,
    backoffMs: 1000,
  });
  return readJob(ctx.objects, ctx.refs, hexOf(receipt?.job_id as string)) as Job;
}

function fakeOutcome(exitCode: number): RunOutcome {
  return {
    exitCode,
    signal: null,
    timedOut: false,
    cancelled: false,
    stdout: Buffer.from('out\n'),
    stderr: Buffer.alloc(0),
    stdoutTruncated: false,
    stderrTruncated: false,
    startedAt: Date.parse('2026-11-25T10:00:00Z'),
    finishedAt: Date.parse('2026-11-25T10:00:01Z'),
  };
}

function leaseOf(outcome: ReturnType<typeof claimJob>): Lease {
  assert.equal(outcome.kind, 'claimed');
  return (outcome as { lease: Lease }).lease;
}

describe('claims', () => {
  test('enqueue is idempotent per job id and deterministic for a fixed clock', async () => {
    const a = setup();
    const b = setup();
    const manifest = checkManifest({ command: ['/bin/true'], timeout: 5 });
    const [first] = await enqueue(a.ctx, [manifest]);
    const [again] = await enqueue(a.ctx, [manifest]);
    const [elsewhere] = await enqueue(b.ctx, [manifest]);
    assert.equal(first?.created, true);
    assert.equal(again?.created, false);
    assert.equal(again?.commit, first?.commit);
    assert.equal(elsewhere?.commit, first?.commit, 'same manifest and clock give the same job commit');
    fsckStrict(a.dir);
  });

  test('one claim wins; others conflict until the lease runs out; the stale holder cannot write', async () => {
    const { dir, ctx, advance } = setup();
    const job = await oneJob(ctx, ['/bin/true']);
    const w1 = workerIdentity(ctx, 'w1');
    const w2 = workerIdentity(ctx, 'w2');
    const first = leaseOf(claimJob(ctx, job, w1, 1000));
    assert.throws(() => claimJob(ctx, job, w2, 1000), isCode('claim_conflict'));
    advance(500);
    heartbeat(ctx, first);
    advance(900);
    assert.throws(() => claimJob(ctx, job, w2, 1000), isCode('claim_conflict'), 'the heartbeat extended the lease');
    advance(200);
    assert.equal(jobView(ctx.objects, ctx.refs, job.hex, ctx.clock()).stale_claim, true);
    const second = leaseOf(claimJob(ctx, job, w2, 1000));
    assert.equal(second.attempt, 2, 'the stale attempt counts');
    assert.throws(() => heartbeat(ctx, first), isCode('lease_lost'));
    assert.throws(() => finishAttempt(ctx, first, attemptRecord(first, fakeOutcome(0))), isCode('lease_lost'));
    assert.equal(ctx.refs.resolve(jobRefs.result(job.hex)), undefined);
    finishAttempt(ctx, second, attemptRecord(second, fakeOutcome(0)));
    assert.equal(jobView(ctx.objects, ctx.refs, job.hex, ctx.clock()).status, 'succeeded');
    assert.deepEqual(
      ctx.refs.list(`refs/gatos/jobs/${job.hex}/claims/`).map((r) => r.name.split('/').pop()),
      ['w1', 'w2'],
      'both claims stay as the audit trail',
    );
    fsckStrict(dir);
  });

  test('failures retry after the backoff up to max attempts, then the job fails for good', async () => {
    const { dir, ctx, advance } = setup();
    const job = await oneJob(ctx, ['/bin/false'], { maxAttempts: 2 });
    const w = workerIdentity(ctx, 'w');
    const one = leaseOf(claimJob(ctx, job, w, 10_000));
    const retry = finishAttempt(ctx, one, attemptRecord(one, fakeOutcome(1)));
    assert.equal(retry.kind, 'retry');
    const view = jobView(ctx.objects, ctx.refs, job.hex, ctx.clock());
    assert.equal(view.status, 'pending');
    assert.ok(view.not_before);
    assert.throws(() => claimJob(ctx, job, w, 10_000), isCode('claim_conflict'), 'not before the backoff');
    advance(1300);
    const two = leaseOf(claimJob(ctx, job, w, 10_000));
    assert.equal(two.attempt, 2);
    assert.equal(finishAttempt(ctx, two, attemptRecord(two, fakeOutcome(1))).kind, 'failed');
    const final = jobView(ctx.objects, ctx.refs, job.hex, ctx.clock());
    assert.equal(final.status, 'failed');
    assert.equal(final.exit_code, 1);
    assert.throws(() => claimJob(ctx, job, w, 10_000), isCode('claim_conflict'));
    fsckStrict(dir);
  });

  test('a release hands the attempt back; a stale last attempt fails the job without a proof', async () => {
    const { ctx, advance } = setup();
    const job = await oneJob(ctx, ['/bin/true'], { maxAttempts: 1 });
    const w = workerIdentity(ctx, 'w');
    const lease = leaseOf(claimJob(ctx, job, w, 1000));
    releaseLease(ctx, lease);
    const again = leaseOf(claimJob(ctx, job, w, 1000));
    assert.equal(again.attempt, 1);
    advance(1001);
    const expired = claimJob(ctx, job, workerIdentity(ctx, 'w2'), 1000);
    assert.equal(expired.kind, 'expired');
    const view = jobView(ctx.objects, ctx.refs, job.hex, ctx.clock());
    assert.equal(view.status, 'failed');
    assert.equal(view.reason, 'lease_expired');
    const verification = verifyJob(ctx.objects, ctx.refs, job.hex);
    assert.equal(verification.ok, false);
    assert.equal(verification.checks.find((c) => !c.ok)?.name, 'poe_present');
  });

  test('cancel: a pending job refuses claims, a claimed one loses its lease, a finished one is job_finished', async () => {
    const { dir, ctx } = setup();
    const pending = await oneJob(ctx, ['/bin/true']);
    await cancel(ctx, pending, 'not needed', 'user:alice');
    assert.equal(jobView(ctx.objects, ctx.refs, pending.hex, ctx.clock()).status, 'aborted');
    assert.throws(() => claimJob(ctx, pending, workerIdentity(ctx, 'w'), 1000), isCode('claim_conflict'));
    await assert.rejects(cancel(ctx, pending, 'again', 'user:alice'), isCode('job_finished'));
    const claimed = await oneJob(ctx, ['/bin/echo']);
    const lease = leaseOf(claimJob(ctx, claimed, workerIdentity(ctx, 'w'), 60_000));
    await cancel(ctx, claimed, 'stop', 'user:alice');
    assert.throws(() => heartbeat(ctx, lease), isCode('lease_lost'));
    assert.equal(ctx.refs.resolve(jobRefs.result(claimed.hex)), undefined);
    fsckStrict(dir);
  });
});

/** Replaces the result commit by one with `change` applied, as an attacker with write access would. */
function tamper(ctx: Ledger, hex: string, change: { path?: string; flip?: boolean; trailer?: [string, string] }): void {
  const oldOid = ctx.refs.resolve(jobRefs.result(hex)) as Oid;
  const commit = parseCommit(ctx.objects.read(oldOid).body);
  const rewrite = (tree: Oid, parts: string[]): Oid => {
    const entries = parseTree(ctx.objects.read(tree).body).map((entry) => {
      if (entry.name !== parts[0]) return entry;
      if (parts.length > 1) return { ...entry, oid: rewrite(entry.oid, parts.slice(1)) };
      const bytes = Buffer.from(ctx.objects.read(entry.oid).body);
      bytes[0] = (bytes[0] as number) ^ 1;
      return { ...entry, oid: ctx.objects.write('blob', bytes) };
    });
    return ctx.objects.write('tree', serializeTree(entries));
  };
  const tree = change.path ? rewrite(commit.tree, change.path.split('/')) : commit.tree;
  let message = commit.message;
  if (change.trailer)
    message = message.replace(new RegExp(`^${change.trailer[0]}: .*$`, 'm'), `${change.trailer[0]}: ${change.trailer[1]}`);
  const newOid = ctx.objects.write('commit', serializeCommit({ ...commit, tree, message }));
  ctx.refs.transaction().update(jobRefs.result(hex), newOid, oldOid).update(jobRefs.claim(hex), newOid, oldOid).commit();
}

describe('workers, proofs and verify', () => {
  test('a worker runs a job; the PoE meets the schema, verifies, and every tamper is caught', async () => {
    const { dir, ctx } = setup(() => Date.now());
    const [receipt] = await enqueue(ctx, [
      checkManifest({ command: ['/bin/sh', '-c'], args: ['echo "$GREETING"; echo oops >&2'], timeout: 30, env: { GREETING: 'hi' } }),
    ]);
    const hex = hexOf(receipt?.job_id as string);
    const summary = await runWorker(ctx, { worker: 'w1', exitWhenIdle: true, workdir: dir });
    assert.equal(summary.succeeded, 1);
    const result = ctx.refs.resolve(jobRefs.result(hex)) as Oid;
    const tree = ctx.objects.read(parseCommit(ctx.objects.read(result).body).tree).body;
    const poeBytes = ctx.objects.read((findTreeEntry(tree, 'poe.json') as { oid: Oid }).oid).body;
    const poe = parseJson(Buffer.from(poeBytes).toString('utf8')) as { outputs: Array<{ kind: string; size?: number }> };
    const validate = referenceSchema('job/proof_of_execution_envelope.schema.json');
    assert.ok(validate(poe), JSON.stringify(validate.errors));
    assert.equal(git(dir, ['show', `${result}:outputs/stdout`]), 'hi\n');
    assert.equal(git(dir, ['show', `${result}:outputs/stderr`]), 'oops\n');
    assert.equal(verifyJob(ctx.objects, ctx.refs, hex).ok, true);
    fsckStrict(dir);

    const failing = (name: string) => {
      const verification = verifyJob(ctx.objects, ctx.refs, hex);
      assert.equal(verification.ok, false, `${name} went unnoticed`);
      return verification.checks.filter((c) => !c.ok).map((c) => c.name);
    };
    tamper(ctx, hex, { path: 'poe.json' });
    assert.ok(failing('poe.json').includes('poe_digest'));
    tamper(ctx, hex, { path: 'poe.json' }); // flips the same bit back
    assert.equal(verifyJob(ctx.objects, ctx.refs, hex).ok, true);
    tamper(ctx, hex, { path: 'outputs/stdout' });
    assert.deepEqual(failing('outputs/stdout'), ['output_stdout']);
    tamper(ctx, hex, { path: 'outputs/stdout' });
    tamper(ctx, hex, { trailer: ['Exit-Code', '3'] });
    assert.deepEqual(failing('Exit-Code'), ['exit_code']);
    tamper(ctx, hex, { trailer: ['Exit-Code', '0'] });
    tamper(ctx, hex, { trailer: ['Attest-Sig', `ed25519:${'0'.repeat(128)}`] });
    assert.deepEqual(failing('Attest-Sig'), ['signature']);
    tamper(ctx, hex, { path: 'result.json' });
    assert.ok(failing('result.json').includes('result_json'));
  });

  test('transitions appear on the events topic in order', async () => {
    const { ctx, dir } = setup(() => Date.now());
    const [receipt] = await enqueue(ctx, [checkManifest({ command: ['/bin/false'], timeout: 30 })], { maxAttempts: 2, backoffMs: 0 });
    await runWorker(ctx, { worker: 'w', exitWhenIdle: true, workdir: dir });
    const types = readMessages(ctx, EVENTS_TOPIC, { limit: 100 })
      .messages.map(
        (m) => JSON.parse(Buffer.from(m.canonical_json, 'base64').toString('utf8')) as { type: string; payload: { job_id: string } },
      )
      .filter((e) => e.payload.job_id === receipt?.job_id)
      .map((e) => e.type);
    assert.deepEqual(types, ['job.created', 'job.claimed', 'job.running', 'job.retry', 'job.claimed', 'job.running', 'job.failed']);
  });

  test('a timeout kills the whole process group and fails the attempt', async () => {
    const { ctx, dir } = setup(() => Date.now());
    const pidFile = join(newDir(), 'child.pid');
    const [receipt] = await enqueue(
      ctx,
      [checkManifest({ command: ['/bin/sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], timeout: 1 })],
      {
        maxAttempts: 1,
      },
    );
    const t0 = Date.now();
    await runWorker(ctx, { worker: 'w', exitWhenIdle: true, workdir: dir });
    assert.ok(Date.now() - t0 < 10_000, 'the worker did not wait for the sleeping grandchild');
    const view = jobView(ctx.objects, ctx.refs, hexOf(receipt?.job_id as string), ctx.clock());
    assert.equal(view.status, 'failed');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z', 'the grandchild was killed');
    const result = ctx.refs.resolve(jobRefs.result(hexOf(receipt?.job_id as string))) as Oid;
    assert.match(git(dir, ['show', `${result}:result.json`]), /"timed_out":true/);
  });

  test('a result that cannot be written stops the worker with that error, claiming nothing more', async () => {
    const { ctx, dir } = setup(() => Date.now());
    // The store refuses the result tree (it names result.json): finishing the attempt throws an
    // error that is not a lost lease, which only the worker's loop can report.
    const refused = new GatosError('io_error', 'disk full (test)');
    const store = ctx.objects;
    const objects: ObjectStore = {
      read: (oid) => store.read(oid),
      has: (oid) => store.has(oid),
      write: (type, body, knownOid) => {
        if (type === 'tree' && Buffer.from(body).includes('result.json')) throw refused;
        return store.write(type, body, knownOid);
      },
      writeMany: (many) => store.writeMany(many),
      openBatch: () => store.openBatch(),
    };
    const receipts = await enqueue(
      ctx,
      ['a', 'b', 'c'].map((name) => checkManifest({ command: ['/bin/echo', name], timeout: 30 })),
    );
    await assert.rejects(runWorker({ ...ctx, objects }, { worker: 'w', exitWhenIdle: true, workdir: dir }), (err) => err === refused);
    const statuses = receipts.map((receipt) => jobView(ctx.objects, ctx.refs, hexOf(receipt.job_id), ctx.clock()).status);
    assert.equal(statuses.filter((status) => status === 'pending').length, 2, statuses.join(', '));
    fsckStrict(dir);
  });

  test('cancel stops a running job within a moment and no result is written', async () => {
    const { ctx, dir } = setup(() => Date.now());
    const [receipt] = await enqueue(ctx, [checkManifest({ command: ['/bin/sleep', '30'], timeout: 60 })]);
    const hex = hexOf(receipt?.job_id as string);
    const working = runWorker(ctx, { worker: 'w', exitWhenIdle: true, workdir: dir });
    while (jobView(ctx.objects, ctx.refs, hex, ctx.clock()).status !== 'running') await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await cancel(ctx, readJob(ctx.objects, ctx.refs, hex) as Job, 'stop it', 'user:alice');
    const summary = await working;
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(summary.lost, 1);
    assert.equal(jobView(ctx.objects, ctx.refs, hex, ctx.clock()).status, 'aborted');
    assert.equal(ctx.refs.resolve(jobRefs.result(hex)), undefined);
    fsckStrict(dir);
  });
});
