#!/usr/bin/env node
/**
 * `npm start`: the end-to-end run on a generated example repository, no setup needed.
 * Generates a deterministic journal fixture under ./example, scans it through the worker pool,
 * shows a decoded event, and asks stock git to confirm what we wrote; then signed events, a
 * policy denial, messages with a consumer checkpoint, a verified fold of the demo namespace, and a
 * job run with its verified proof, and SQLite and Parquet exports that verify.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blake3Ready } from '../engine/codec/blake3.js';
import { GatosError } from '../engine/errors.js';
import { openRepository } from '../engine/git/repository.js';
import { enqueue } from '../engine/jobs/enqueue.js';
import { checkManifest } from '../engine/jobs/manifest.js';
import { verifyJob } from '../engine/jobs/proof.js';
import { jobView } from '../engine/jobs/store.js';
import { runWorker } from '../engine/jobs/worker.js';
import { systemClock } from '../engine/ledger/clock.js';
import { appendEvents } from '../engine/ledger/journal.js';
import { readEvent } from '../engine/ledger/journal-read.js';
import { createKey, keyDirectory } from '../engine/ledger/keys.js';
import { activateBundle, publishBundle } from '../engine/ledger/policy-store.js';
import { addActorKey, updateTrust } from '../engine/ledger/trust.js';
import { writeCheckpoint } from '../engine/messages/checkpoint.js';
import { publish } from '../engine/messages/publish.js';
import { readMessages } from '../engine/messages/read.js';
import { decodeRows, scanRefs } from '../engine/scan/scan-refs.js';
import { ComputePool } from '../engine/scheduler/pool.js';
import { stateRef } from '../engine/state/checkpoint.js';
import { fold } from '../engine/state/fold.js';
import { privateStore } from '../engine/state/pointers.js';
import { verifyCheckpoint } from '../engine/state/verify.js';
import { runExport } from '../exporter/export.js';
import { verifyExport } from '../exporter/verify.js';
import { generateFixture } from '../fixtures/generate.js';
import { Output } from './output.js';

const EVENTS = Number(process.env.GATOS_DEMO_EVENTS ?? 20_000);
const out = new Output(false);
const dir = fileURLToPath(new URL('../../example/', import.meta.url));

rmSync(dir, { recursive: true, force: true });
console.log(`GATOS demo: generating ${EVENTS} journal events (seed 42) in ${dir}`);
let started = performance.now();
const fixture = await generateFixture({
  events: EVENTS,
  seed: 42,
  out: dir,
  onProgress: (done, total) => out.progress('  events', done, total, done === total),
});
console.log(
  `  ${fixture.objects} objects in one packfile, ${fixture.refs.length} journal refs, ${((performance.now() - started) / 1000).toFixed(2)} s`,
);

const repo = openRepository(dir);
const pool = new ComputePool();
started = performance.now();
let commits = 0;
let sample: unknown;
for await (const batch of scanRefs(pool, repo.gitDir, repo.refs.list('refs/gatos/journal/'))) {
  commits += batch.count;
  sample ??= decodeRows(batch)[0];
}
await pool.close();
const seconds = (performance.now() - started) / 1000;
console.log(
  `\nScanned ${commits} commits on ${pool.threads} worker threads in ${seconds.toFixed(2)} s (${Math.round(commits / seconds)} commits/s)`,
);
console.log('A decoded event row:');
console.log(JSON.stringify(sample, null, 2).replace(/^/gm, '  '));

const gitCount = Number(execFileSync('git', ['-C', dir, 'rev-list', '--count', '--glob=refs/gatos/journal'], { encoding: 'utf8' }).trim());
console.log(`\nStock git agrees: git rev-list --count over the journals = ${gitCount}.`);

// The ledger plane: a key for an actor, signed events, and a check of one of them.
await blake3Ready();
const ledger = { objects: repo.objects, refs: repo.refs, keyDir: keyDirectory(repo.gitDir), clock: systemClock };
const { publicKey } = createKey(ledger.keyDir, 'user:demo');
updateTrust(ledger.objects, ledger.refs, ledger.clock, 'trust: add key for user:demo', (graph) =>
  addActorKey(graph, 'user:demo', publicKey, ['@leads']),
);
console.log(`\nCreated an Ed25519 key for user:demo (${publicKey.slice(0, 24)}...), published in refs/gatos/trust`);
const appended = await appendEvents(ledger, [
  { ns: 'demo', type: 'deploy.started', actor: 'user:demo', payload: { service: 'api', version: 7 } },
  { ns: 'demo', type: 'deploy.finished', actor: 'user:demo', payload: { service: 'api', version: 7, ok: true } },
]);
for (const event of appended) console.log(`  appended ${event.ulid} -> ${event.commit.slice(0, 12)} on ${event.ref}`);
const shown = readEvent(ledger.objects, ledger.refs, appended[1]?.commit as string);
console.log(`  event show: Event-CID ${shown.cid_ok ? 'recomputes' : 'MISMATCH'}, signature ${shown.signature_ok ? 'valid' : 'INVALID'}`);

// A policy: in ns "demo", only @leads may deploy. An intern's deploy is denied and audited.
const intern = createKey(ledger.keyDir, 'user:intern');
updateTrust(ledger.objects, ledger.refs, ledger.clock, 'trust: add key for user:intern', (graph) =>
  addActorKey(graph, 'user:intern', intern.publicKey),
);
const bundleDir = join(dir, 'policy-bundle');
mkdirSync(bundleDir, { recursive: true });
const policy = {
  version: 1,
  default: 'allow',
  rules: [
    { id: 'leads-deploy', effect: 'allow', match: { ns: 'demo', type: 'deploy.*', actor: '@leads' } },
    { id: 'deploys-need-a-lead', effect: 'deny', match: { ns: 'demo', type: 'deploy.*' }, reason: 'only @leads deploy in demo' },
  ],
};
writeFileSync(join(bundleDir, 'policy.json'), `${JSON.stringify(policy, null, 2)}\n`);
const bundle = publishBundle(ledger.objects, ledger.refs, ledger.clock, bundleDir);
activateBundle(ledger.objects, ledger.refs, bundle.bundleId);
console.log(`\nActivated policy bundle ${bundle.bundleId.slice(0, 16)}... (refs/gatos/policies/active)`);
try {
  await appendEvents(ledger, [{ ns: 'demo', type: 'deploy.started', actor: 'user:intern', payload: { service: 'api' } }]);
  console.error('  the intern deploy was not denied');
  process.exitCode = 1;
} catch (err) {
  if (!(err instanceof GatosError) || err.code !== 'POLICY_DENY') throw err;
  console.log(`  user:intern deploy.started -> ${err.code}: ${err.message}`);
  console.log(
    `  audited at: ${ledger.refs
      .list('refs/gatos/audit/policy/deny/')
      .map((r) => r.name)
      .join(', ')}`,
  );
}
const [allowed] = await appendEvents(ledger, [{ ns: 'demo', type: 'deploy.started', actor: 'user:demo', payload: { service: 'web' } }]);
console.log(`  user:demo deploy.started -> appended ${allowed?.commit.slice(0, 12)} (policy_root ${bundle.commit.slice(0, 12)})`);

// The message plane: publish on a topic, read a page, checkpoint a consumer group.
const bus = { objects: repo.objects, refs: repo.refs, clock: systemClock };
const receipts = await publish(
  bus,
  'deploys',
  ['api', 'web', 'worker'].map((service) => ({ ns: 'demo', type: 'deploy.announced', payload: { service } })),
);
console.log(`\nPublished ${receipts.length} messages on topic "deploys" (segment ${receipts[0]?.segment})`);
const page = readMessages(bus, 'deploys', { limit: 2 });
for (const message of page.messages)
  console.log(`  read ${message.ulid} ${Buffer.from(message.canonical_json, 'base64').toString('utf8')}`);
writeCheckpoint(bus, 'dashboards', 'deploys', { ulid: page.next_since as string });
console.log(
  `  checkpoint dashboards/deploys at ${page.next_since}; next page: ${readMessages(bus, 'deploys', { since: page.next_since as string }).messages.length} message(s)`,
);

// The state plane: fold the demo namespace, verify its Proof-of-Fold by replay, show one node.
const folded = await fold(ledger, 'demo', { gitDir: repo.gitDir, store: privateStore(repo.gitDir) });
console.log(`\nFolded ${folded.events} demo events into ${stateRef('demo')} (${folded.commit.slice(0, 12)})`);
console.log(`  State-Root ${folded.state_root}`);
const foldProof = await verifyCheckpoint(ledger, folded.commit, repo.gitDir);
console.log(`  fold verify: ${foldProof.ok ? 'Proof-of-Fold verified, replay matches' : 'FAILED'} (${foldProof.checks.length} checks)`);
console.log(
  `  state show demo deploy.started: ${execFileSync('git', ['-C', dir, 'show', `${folded.commit}:state/deploy.started.json`], { encoding: 'utf8' })}`,
);

// The job plane: enqueue a job, let one worker claim and run it, verify its Proof-of-Execution.
const demoJob = checkManifest({ command: ['/bin/sh', '-c'], args: ['echo "hello from job $GATOS_JOB_ID"'], timeout: 30 });
const [job] = (await enqueue(ledger, [demoJob])) as [Awaited<ReturnType<typeof enqueue>>[number]];
console.log(`\nEnqueued job ${job.job_id} (alias ${job.ulid}) at refs/gatos/jobs/<hex>/job`);
const summary = await runWorker(ledger, { worker: 'demo-worker', exitWhenIdle: true, workdir: dir });
const jobHex = job.job_id.slice('blake3:'.length);
const jobResult = jobView(ledger.objects, ledger.refs, jobHex, ledger.clock());
console.log(`  worker demo-worker ran ${summary.started} job(s): ${jobResult.status}, exit ${jobResult.exit_code}`);
console.log(`  stdout: ${execFileSync('git', ['-C', dir, 'show', `${jobResult.result}:outputs/stdout`], { encoding: 'utf8' }).trim()}`);
const proof = verifyJob(ledger.objects, ledger.refs, jobHex);
console.log(
  `  jobs verify: ${proof.ok ? 'Proof-of-Execution verified' : 'FAILED'} (${proof.checks.length} checks: digests, signature, trust, outputs)`,
);

// The exporter: everything to SQLite and to Parquet, each verified against the repository.
const exportsDir = join(dir, 'exports');
const verified: boolean[] = [];
for (const format of ['sqlite', 'parquet'] as const) {
  const out = join(exportsDir, format === 'sqlite' ? 'repo.sqlite' : 'repo-parquet');
  started = performance.now();
  const manifest = await runExport(repo, { format, out, clock: systemClock });
  const rows = Object.values(manifest.row_counts).reduce((a, b) => a + b, 0);
  const check = await verifyExport(out, repo);
  verified.push(check.ok);
  console.log(
    `\nExported ${rows} rows to ${format} (${manifest.files.length - 1} file(s)) in ${((performance.now() - started) / 1000).toFixed(2)} s; verify: ${check.ok ? 'valid' : 'INVALID'}`,
  );
  if (format === 'sqlite')
    console.log(`  Explorer-Root ${manifest.explorer_root}\n  try: sqlite3 ${out} "select kind, count(*) from events group by kind"`);
}

execFileSync('git', ['-C', dir, 'fsck', '--strict', '--no-dangling'], { stdio: 'ignore' });
console.log('git fsck --strict is clean.');
console.log(`Try: git -C example log --format='%h %s%n%(trailers)' ${fixture.refs[0]?.name ?? ''} | head`);
repo.close();
if (gitCount !== commits || !shown.cid_ok || !shown.signature_ok || !proof.ok || !foldProof.ok || verified.includes(false)) {
  console.error(`mismatch: scanned ${commits} commits, git counts ${gitCount}`);
  process.exitCode = 1;
}
