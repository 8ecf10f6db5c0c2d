import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { git, scratch } from '../helpers/git.js';

const GATOS = fileURLToPath(new URL('../../cli/gatos.js', import.meta.url));
const { repo: newRepo } = scratch();
let dir: string;

function gatos(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [GATOS, '--repo', dir, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, GATOS_KEY_DIR: '' },
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

before(() => {
  dir = newRepo();
});

describe('gatos key and gatos event', () => {
  test('key new publishes the public key; a second key new is refused', () => {
    const created = gatos(['key', 'new', '--actor', 'user:alice', '--group', '@leads', '--json']);
    assert.equal(created.status, 0, created.stderr);
    const body = JSON.parse(created.stdout) as { public_key: string };
    assert.match(body.public_key, /^ed25519:[0-9a-f]{64}$/);
    assert.equal(gatos(['key', 'new', '--actor', 'user:alice']).status, 2);
    const listed = JSON.parse(gatos(['key', 'ls', '--json']).stdout) as {
      actors: Array<{ actor: string; local: boolean }>;
      groups: Record<string, string[]>;
    };
    assert.deepEqual(
      listed.actors.map((a) => [a.actor, a.local]),
      [['user:alice', true]],
    );
    assert.deepEqual(listed.groups, { '@leads': ['user:alice'] });
    assert.match(git(dir, ['show', 'refs/gatos/trust:graph.json']), /"user:alice"/);
  });

  test('event add prints {commit, event_cid, ulid, ref}; show verifies it', () => {
    const added = gatos([
      'event',
      'add',
      '--ns',
      'ops',
      '--type',
      'deploy',
      '--payload',
      '{"service":"api"}',
      '--actor',
      'user:alice',
      '--json',
    ]);
    assert.equal(added.status, 0, added.stderr);
    const body = JSON.parse(added.stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(body).sort(), ['commit', 'event_cid', 'ref', 'ulid']);
    assert.equal(body.ref, 'refs/gatos/journal/ops/user/alice');
    const shown = gatos(['event', 'show', body.commit as string, '--json']);
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { signature_ok: boolean }).signature_ok, true);
    const bare = gatos(['event', 'show']);
    assert.equal(bare.status, 2);
    assert.match(bare.stderr, /event show needs a commit id[\s\S]*usage: gatos event/);
    assert.equal(gatos(['event', 'emit', '--ns', 'ops', '--type', 'deploy', '--payload', '{}', '--actor', 'user:alice']).status, 0);
  });

  test('--file appends many events; bad input exits 2 and appends nothing', () => {
    const file = join(dir, 'events.jsonl');
    writeFileSync(file, Array.from({ length: 50 }, (_, i) => JSON.stringify({ type: 'tick', payload: { i } })).join('\n'));
    const result = gatos(['event', 'add', '--file', file, '--ns', 'batch', '--actor', 'user:alice', '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim().split('\n').length, 50);
    assert.equal(git(dir, ['rev-list', '--count', 'refs/gatos/journal/batch/user/alice']).trim(), '50');
    const before = git(dir, ['for-each-ref']);
    assert.equal(gatos(['event', 'add', '--ns', 'ops', '--type', 't', '--payload', '{bad', '--actor', 'user:alice']).status, 2);
    assert.equal(gatos(['event', 'add', '--ns', 'ops', '--type', 't', '--payload', '{}', '--actor', 'user:nobody']).status, 2);
    assert.equal(
      gatos(['event', 'add', '--ns', 'ops', '--type', 't', '--payload', '{}', '--actor', 'user:alice', '--ulid', 'nope']).status,
      2,
    );
    assert.equal(git(dir, ['for-each-ref']), before);
    git(dir, ['fsck', '--strict']);
  });

  test('policy publish/activate; a denied event exits 1 with POLICY_DENY and is audited', () => {
    const bundleDir = join(dir, 'bundle');
    mkdirSync(bundleDir);
    writeFileSync(
      join(bundleDir, 'policy.json'),
      JSON.stringify({ version: 1, default: 'allow', rules: [{ id: 'frozen', effect: 'deny', match: { ns: 'frozen' } }] }),
    );
    const published = gatos(['policy', 'publish', bundleDir, '--json']);
    assert.equal(published.status, 0, published.stderr);
    const { bundle_id: bundleId } = JSON.parse(published.stdout) as { bundle_id: string };
    assert.equal(gatos(['policy', 'activate', bundleId]).status, 0);
    const denied = gatos(['event', 'add', '--ns', 'frozen', '--type', 't', '--payload', '{}', '--actor', 'user:alice', '--json']);
    assert.equal(denied.status, 1);
    assert.equal((JSON.parse(denied.stdout) as { error: { code: string } }).error.code, 'POLICY_DENY');
    assert.equal(git(dir, ['for-each-ref', 'refs/gatos/journal/frozen/']), '');
    assert.equal(git(dir, ['for-each-ref', 'refs/gatos/audit/policy/deny/']).trim().split('\n').length, 1);
    assert.equal(gatos(['event', 'add', '--ns', 'open', '--type', 't', '--payload', '{}', '--actor', 'user:alice']).status, 0);
  });

  test('gov: 2-of-@leads is refused with one approval (exit 1) and granted with two', () => {
    assert.equal(gatos(['key', 'new', '--actor', 'user:bob', '--group', '@leads']).status, 0);
    const proposed = gatos([
      'gov',
      'propose',
      '--action',
      'publish.artifact',
      '--target',
      'gatos://assets/a',
      '--quorum',
      '2-of-@leads',
      '--actor',
      'user:alice',
      '--json',
    ]);
    assert.equal(proposed.status, 0, proposed.stderr);
    const { proposal_id: id } = JSON.parse(proposed.stdout) as { proposal_id: string };
    assert.equal(gatos(['gov', 'approve', id, '--actor', 'user:alice']).status, 0);
    const early = gatos(['gov', 'grant', id, '--actor', 'user:alice', '--json']);
    assert.equal(early.status, 1);
    assert.equal((JSON.parse(early.stdout) as { error: { code: string } }).error.code, 'quorum_not_met');
    assert.equal(gatos(['gov', 'approve', id, '--actor', 'user:bob']).status, 0);
    assert.equal(gatos(['gov', 'grant', id, '--actor', 'user:bob']).status, 0);
    assert.equal((JSON.parse(gatos(['gov', 'status', id, '--json']).stdout) as { state: string }).state, 'granted');
    // Each transition was announced on its governance topic.
    const topics = (JSON.parse(gatos(['messages', 'topics', '--json']).stdout) as { topics: string[] }).topics;
    assert.deepEqual(topics.filter((t) => t.startsWith('gatos.governance.')).sort(), [
      'gatos.governance.approval.created',
      'gatos.governance.grant.created',
      'gatos.governance.proposal.created',
    ]);
    const approvals = JSON.parse(gatos(['messages', 'read', '--topic', 'gatos.governance.approval.created', '--json']).stdout) as {
      messages: unknown[];
    };
    assert.equal(approvals.messages.length, 2);
  });
});
