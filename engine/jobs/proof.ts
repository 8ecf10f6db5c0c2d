/**
 * Proof-of-Execution (schema `proof_of_execution_envelope`, closed). Each attempt's tree holds
 *
 *   poe.json        canonical JSON {job_id, runner{program,version,platform}, outputs, started_at, finished_at}
 *   result.json     {job_id, status, attempt, exit_code|null, signal|null, timed_out, worker}
 *   outputs/stdout  outputs/stderr   (size-capped; their digests are in poe.json)
 *
 * and its commit carries `Proof-Of-Execution` (BLAKE3 of poe.json), `Worker-Id` (the worker's
 * Ed25519 key), `Attest-Program` (= runner.program) and `Attest-Sig` (Ed25519 over poe.json,
 * which names the job id). `verifyJob` re-derives all of it (decision 0007).
 */
import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { contentId } from '../codec/blake3.js';
import { canonicalBytes, parseJson } from '../codec/canonical-json.js';
import { findTreeEntry, readCommit, serializeTree } from '../git/object-codec.js';
import { hashObject } from '../git/oid.js';
import type { GitObject, ObjectStore, Oid, RefStore } from '../git/ports.js';
import { parseTrailers, type Trailer, trailerValue } from '../git/trailers.js';
import { signBytes, verifyBytes } from '../ledger/keys.js';
import { keysOf, readTrust } from '../ledger/trust.js';
import { packageVersion } from '../version.js';
import type { AttemptRecord, Lease } from './lifecycle.js';
import { jobId, parseManifestText } from './manifest.js';
import type { RunOutcome } from './run-process.js';
import { jobRefs } from './store.js';

export interface Runner {
  program: string;
  version: string;
  platform: string;
}

let runner: Runner | undefined;

/** The runner that executes commands: the digest of this process runner's code, versions, platform. */
export function runnerInfo(): Runner {
  if (!runner) {
    const code = readFileSync(fileURLToPath(new URL('./run-process.js', import.meta.url)));
    runner = {
      program: contentId(code),
      version: `gatos ${packageVersion()}; node ${process.version}`,
      platform: `${platform()}-${arch()}`,
    };
  }
  return runner;
}

export function attemptSucceeded(outcome: RunOutcome): boolean {
  return outcome.exitCode === 0 && !outcome.timedOut && !outcome.cancelled && outcome.error === undefined;
}

function outputEntry(kind: string, bytes: Uint8Array, truncated: boolean) {
  return { kind, hash: contentId(bytes), size: bytes.length, truncated };
}

/** Builds the attempt's tree, PoE and signature. */
export function attemptRecord(lease: Lease, outcome: RunOutcome): AttemptRecord {
  const ok = attemptSucceeded(outcome);
  const exit = {
    kind: 'exit',
    exit_code: outcome.exitCode,
    signal: outcome.signal,
    timed_out: outcome.timedOut,
    ...(outcome.error ? { error: outcome.error } : {}),
  };
  const poe = {
    job_id: lease.job.id,
    runner: runnerInfo(),
    outputs: [
      outputEntry('stdout', outcome.stdout, outcome.stdoutTruncated),
      outputEntry('stderr', outcome.stderr, outcome.stderrTruncated),
      exit,
    ],
    started_at: new Date(outcome.startedAt).toISOString(),
    finished_at: new Date(outcome.finishedAt).toISOString(),
  };
  const poeBytes = canonicalBytes(poe);
  const result = {
    job_id: lease.job.id,
    status: ok ? 'succeeded' : 'failed',
    attempt: lease.attempt,
    exit_code: outcome.exitCode,
    signal: outcome.signal,
    timed_out: outcome.timedOut,
    worker: lease.worker.name,
  };
  const resultBytes = Buffer.from(`${Buffer.from(canonicalBytes(result)).toString('utf8')}\n`);
  const outputsTree = serializeTree([
    { mode: '100644', name: 'stderr', oid: hashObject('blob', outcome.stderr) },
    { mode: '100644', name: 'stdout', oid: hashObject('blob', outcome.stdout) },
  ]);
  const root = serializeTree([
    { mode: '40000', name: 'outputs', oid: hashObject('tree', outputsTree) },
    { mode: '100644', name: 'poe.json', oid: hashObject('blob', poeBytes) },
    { mode: '100644', name: 'result.json', oid: hashObject('blob', resultBytes) },
  ]);
  const objects: GitObject[] = [
    { type: 'blob', body: outcome.stdout },
    { type: 'blob', body: outcome.stderr },
    { type: 'tree', body: outputsTree },
    { type: 'blob', body: poeBytes },
    { type: 'blob', body: resultBytes },
    { type: 'tree', body: root },
  ];
  const signature = signBytes(lease.worker.key, poeBytes);
  const trailers: Trailer[] = [
    { key: 'Proof-Of-Execution', value: contentId(poeBytes) },
    { key: 'Worker-Name', value: lease.worker.name },
    { key: 'Worker-Id', value: lease.worker.publicKey },
    { key: 'Attest-Program', value: poe.runner.program },
    { key: 'Attest-Sig', value: `ed25519:${Buffer.from(signature).toString('hex')}` },
  ];
  return { ok, ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}), objects, tree: hashObject('tree', root), trailers };
}

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface Verification {
  job_id: string;
  ok: boolean;
  result?: Oid;
  checks: Check[];
}

function blobAt(objects: ObjectStore, tree: Oid, path: string): Uint8Array | undefined {
  let current = tree;
  const parts = path.split('/');
  for (const [i, part] of parts.entries()) {
    const entry = findTreeEntry(objects.read(current).body, part);
    if (!entry) return undefined;
    if (i === parts.length - 1) return entry.mode === '40000' ? undefined : objects.read(entry.oid).body;
    current = entry.oid;
  }
  return undefined;
}

/** Checks the job's result: manifest digest, PoE digest and fields, signature, trust, outputs, chain. */
export function verifyJob(objects: ObjectStore, refs: RefStore, hex: string): Verification {
  const id = `blake3:${hex}`;
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push(detail && !ok ? { name, ok, detail } : { name, ok });
    return ok;
  };
  const done = (result?: Oid): Verification => ({ job_id: id, ok: checks.every((c) => c.ok), ...(result ? { result } : {}), checks });
  const jobCommit = refs.resolve(jobRefs.job(hex));
  if (!check('job', jobCommit !== undefined, `no job ${id}`)) return done();
  const jobYaml = blobAt(objects, readCommit(objects, jobCommit as Oid).tree, 'job.yaml');
  let manifestId: string | undefined;
  try {
    manifestId = jobYaml ? jobId(parseManifestText(Buffer.from(jobYaml).toString('utf8'))) : undefined;
  } catch {
    manifestId = undefined;
  }
  check('manifest_digest', manifestId === id, `job.yaml hashes to ${manifestId ?? 'nothing valid'}, not ${id}`);
  const result = refs.resolve(jobRefs.result(hex));
  if (!check('result', result !== undefined, 'the job has no result yet')) return done();
  const commit = readCommit(objects, result as Oid);
  const trailers = parseTrailers(commit.message);
  check('trailer_job_id', trailerValue(trailers, 'Job-Id') === id, `Job-Id trailer is ${trailerValue(trailers, 'Job-Id')}`);
  const poeBytes = blobAt(objects, commit.tree, 'poe.json');
  if (!check('poe_present', poeBytes !== undefined, `no poe.json (${trailerValue(trailers, 'Reason') ?? 'no execution recorded'})`))
    return done(result);
  const poeDigest = contentId(poeBytes as Uint8Array);
  check('poe_digest', trailerValue(trailers, 'Proof-Of-Execution') === poeDigest, `poe.json hashes to ${poeDigest}`);
  let poe: { job_id?: unknown; runner?: { program?: unknown }; outputs?: Array<Record<string, unknown>> } = {};
  try {
    poe = parseJson(Buffer.from(poeBytes as Uint8Array).toString('utf8')) as typeof poe;
  } catch (err) {
    check('poe_json', false, (err as Error).message);
  }
  check('poe_job_id', poe.job_id === id, `poe.json names ${String(poe.job_id)}`);
  check('attest_program', poe.runner?.program === trailerValue(trailers, 'Attest-Program'), 'Attest-Program differs from runner.program');
  const key = trailerValue(trailers, 'Worker-Id') ?? '';
  const sig = /^ed25519:([0-9a-f]{128})$/.exec(trailerValue(trailers, 'Attest-Sig') ?? '');
  check(
    'signature',
    sig !== null && verifyBytes(key, poeBytes as Uint8Array, Buffer.from(sig[1] as string, 'hex')),
    'Attest-Sig does not verify with Worker-Id over poe.json',
  );
  const worker = trailerValue(trailers, 'Worker-Name') ?? '';
  const { graph } = readTrust(objects, refs);
  check('trusted_worker', keysOf(graph, `agent:${worker}`).includes(key), `${key} is not a trusted key of agent:${worker}`);
  for (const output of poe.outputs ?? []) {
    if (output.kind !== 'stdout' && output.kind !== 'stderr') continue;
    const bytes = blobAt(objects, commit.tree, `outputs/${output.kind}`);
    check(
      `output_${output.kind}`,
      bytes !== undefined && contentId(bytes) === output.hash && bytes.length === output.size,
      `outputs/${output.kind} does not match its digest in poe.json`,
    );
  }
  const exit = (poe.outputs ?? []).find((o) => o.kind === 'exit');
  const state = trailerValue(trailers, 'Job-State');
  const succeeded = exit?.exit_code === 0 && exit.timed_out === false && exit.error === undefined;
  check('state', state === (succeeded ? 'succeeded' : 'failed'), `Job-State ${state} contradicts the recorded exit`);
  const exitTrailer = trailerValue(trailers, 'Exit-Code');
  check(
    'exit_code',
    (exitTrailer ?? null) === (exit?.exit_code == null ? null : String(exit.exit_code)),
    'Exit-Code trailer differs from poe.json',
  );
  const resultFile = blobAt(objects, commit.tree, 'result.json');
  let recorded: { job_id?: unknown; status?: unknown } = {};
  try {
    recorded = resultFile ? (parseJson(Buffer.from(resultFile).toString('utf8').trimEnd()) as typeof recorded) : {};
  } catch {
    recorded = {};
  }
  check('result_json', recorded.job_id === id && recorded.status === state, 'result.json disagrees with the result commit');
  let chainOk = false;
  let cursor: Oid | undefined = commit.parents[0];
  for (let steps = 0; cursor && steps < 100_000; steps++) {
    if (cursor === jobCommit) {
      chainOk = true;
      break;
    }
    cursor = readCommit(objects, cursor).parents[0];
  }
  check('chain', chainOk, 'the result does not descend from the job commit through its claim chain');
  return done(result);
}
