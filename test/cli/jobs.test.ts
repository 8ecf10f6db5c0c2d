import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fsckStrict, git, scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const { repo: newRepo } = scratch();

function gatos(dir: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [GATOS, '--repo', dir, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function startWorker(dir: string, worker: string, extra: string[] = []): ChildProcess & { done: Promise<number> } {
  const child = spawn(process.execPath, [GATOS, '--repo', dir, 'jobs', 'work', '--worker-id', worker, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return Object.assign(child, { done: new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1))) });
}

interface View {
  job_id: string;
  status: string;
  attempt: number;
  worker?: string;
}

function jobs(dir: string): View[] {
  return (JSON.parse(gatos(dir, ['jobs', 'ls', '--json']).stdout) as { jobs: View[] }).jobs;
}

/** Claim-chain subjects of a job, oldest first (`claimed …`, `running …`, `succeeded …`). */
function chainStates(dir: string, jobId: string): string[] {
  const hex = jobId.slice(7);
  return git(dir, ['log', '--reverse', '--format=%s', `refs/gatos/jobs/${hex}/claim`, `^refs/gatos/jobs/${hex}/job`])
    .trim()
    .split('\n')
    .map((subject) => subject.split(' ')[0] as string);
}

async function race(workers: number, jobCount: number, concurrency = 1): Promise<void> {
  const dir = newRepo();
  const file = join(dir, 'jobs.jsonl');
  writeFileSync(
    file,
    Array.from({ length: jobCount }, (_, i) => JSON.stringify({ command: ['/bin/echo', `job ${i}`], timeout: 30 })).join('\n'),
  );
  const enqueued = gatos(dir, ['jobs', 'enqueue', '--file', file, '--json']);
  assert.equal(enqueued.status, 0, enqueued.stderr);
  // Keys are made on first use; make them before the race so the trust ref is not part of it.
  for (let i = 0; i < workers; i++) assert.equal(gatos(dir, ['key', 'new', '--actor', `agent:w${i}`]).status, 0);
  const children = Array.from({ length: workers }, (_, i) =>
    startWorker(dir, `w${i}`, ['--exit-when-idle', '--concurrency', String(concurrency)]),
  );
  const codes = await Promise.all(children.map((c) => c.done));
  assert.deepEqual(codes, Array(workers).fill(0));
  const views = jobs(dir);
  assert.equal(views.length, jobCount);
  for (const view of views) {
    assert.equal(view.status, 'succeeded', view.job_id);
    assert.deepEqual(chainStates(dir, view.job_id), ['claimed', 'running', 'succeeded'], 'exactly one claim per job');
    const hex = view.job_id.slice(7);
    assert.equal(
      git(dir, ['for-each-ref', `refs/gatos/jobs/${hex}/claims/`])
        .trim()
        .split('\n').length,
      1,
    );
    assert.equal(gatos(dir, ['jobs', 'verify', view.job_id]).status, 0);
  }
  fsckStrict(dir);
}

describe('gatos jobs', () => {
  test('2 worker processes (3 jobs at a time each) racing on the same jobs: one claim and one result per job', () => race(2, 12, 3));

  test('16 worker processes racing: still one claim and one result per job', () => race(16, 8));

  test('kill -9 a worker mid-job: another re-claims after the lease and writes the only result', async () => {
    const dir = newRepo();
    // The first attempt outlasts any polling delay on a loaded machine; the second is quick.
    const marker = join(dir, 'first-attempt');
    const script = `if [ -e ${marker} ]; then echo finished; else touch ${marker}; sleep 30; fi`;
    const enqueued = gatos(dir, ['jobs', 'enqueue', '--command', JSON.stringify(['/bin/sh', '-c', script]), '--timeout', '120', '--json']);
    assert.equal(enqueued.status, 0, enqueued.stderr);
    const { job_id: jobId } = JSON.parse(enqueued.stdout) as { job_id: string };
    const doomed = startWorker(dir, 'doomed', ['--lease', '1']);
    for (let status = jobs(dir)[0]?.status; status !== 'running'; status = jobs(dir)[0]?.status) {
      assert.ok(
        status === undefined || status === 'pending' || status === 'claimed',
        `the job went ${status} before the worker was killed`,
      );
      await new Promise((r) => setTimeout(r, 25));
    }
    doomed.kill('SIGKILL');
    await doomed.done;
    const rescuer = startWorker(dir, 'rescuer', ['--lease', '1', '--once']);
    assert.equal(await rescuer.done, 0);
    const [view] = jobs(dir);
    assert.equal(view?.status, 'succeeded');
    assert.equal(view?.attempt, 2);
    assert.equal(view?.worker, 'rescuer');
    const states = chainStates(dir, jobId);
    assert.equal(states.filter((s) => s === 'succeeded').length, 1);
    assert.equal(states[states.length - 1], 'succeeded');
    assert.deepEqual(
      git(dir, ['for-each-ref', '--format=%(refname:lstrip=-1)', `refs/gatos/jobs/${jobId.slice(7)}/claims/`])
        .trim()
        .split('\n'),
      ['doomed', 'rescuer'],
    );
    assert.equal(gatos(dir, ['jobs', 'verify', jobId]).status, 0);
    fsckStrict(dir);
  });

  test('show, ls --status, cancel, watch output and exit codes', async () => {
    const dir = newRepo();
    const manifest = join(dir, 'job.yaml');
    writeFileSync(manifest, 'command: [/bin/echo]\nargs: [hello]\ntimeout: PT30S\n');
    const enqueued = JSON.parse(gatos(dir, ['jobs', 'enqueue', '--manifest', manifest, '--json']).stdout) as {
      job_id: string;
      ulid: string;
    };
    assert.equal(enqueued.job_id, 'blake3:5c4f6b750d6930ffc8491f59dc7cffd5201b680755db0e9acff17d313df031d1');
    const shown = JSON.parse(gatos(dir, ['jobs', 'show', enqueued.ulid, '--json']).stdout) as View;
    assert.equal(shown.job_id, enqueued.job_id);
    assert.equal(gatos(dir, ['jobs', 'show', enqueued.job_id.slice(7, 17)]).status, 0);
    assert.equal((JSON.parse(gatos(dir, ['jobs', 'ls', '--status', 'pending', '--json']).stdout) as { jobs: View[] }).jobs.length, 1);
    assert.equal(gatos(dir, ['jobs', 'cancel', enqueued.job_id]).status, 0);
    assert.equal(gatos(dir, ['jobs', 'cancel', enqueued.job_id]).status, 1, 'cancelling twice: job_finished');
    assert.equal(gatos(dir, ['jobs', 'verify', enqueued.job_id]).status, 1, 'no result to verify');
    const watch = spawn(process.execPath, [GATOS, '--repo', dir, 'jobs', 'watch', '--json']);
    let text = '';
    watch.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    while (!text.includes('job.aborted')) await new Promise((r) => setTimeout(r, 25));
    watch.kill('SIGTERM');
    const events = text
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { type: string }).type);
    assert.deepEqual(events, ['job.created', 'job.aborted']);
  });

  test('bad manifests exit 2 with invalid_manifest and change nothing', () => {
    const dir = newRepo();
    const bad: string[][] = [
      ['--timeout', '5'],
      ['--command', '/bin/echo', '--timeout', '-5'],
      ['--command', '/bin/echo', '--timeout', 'soon'],
      ['--command', '/bin/echo', '--timeout', '5', '--env', 'BAD-NAME=x'],
      ['--command', '[]', '--timeout', '5'],
      ['--command', '/bin/echo', '--timeout', '5', '--input', 'sha1:abc'],
    ];
    for (const args of bad) {
      const result = gatos(dir, ['jobs', 'enqueue', ...args, '--json']);
      assert.equal(result.status, 2, args.join(' '));
    }
    assert.match(gatos(dir, ['jobs', 'enqueue', '--command', '/bin/echo', '--timeout', 'P1Y']).stderr, /invalid_manifest/);
    assert.equal(git(dir, ['for-each-ref', 'refs/gatos']), '');
  });
});
