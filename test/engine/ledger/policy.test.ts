import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { blake3Ready } from '../../../engine/codec/blake3.js';
import { GatosError } from '../../../engine/errors.js';
import { openRepository } from '../../../engine/git/repository.js';
import { appendEvents, type Ledger } from '../../../engine/ledger/journal.js';
import { readEvent } from '../../../engine/ledger/journal-read.js';
import { createKey } from '../../../engine/ledger/keys.js';
import { checkPolicy, evaluate, evaluateRead } from '../../../engine/ledger/policy.js';
import { ACTIVE_POLICY, activateBundle, publishBundle } from '../../../engine/ledger/policy-store.js';
import { addActorKey, emptyTrust, updateTrust } from '../../../engine/ledger/trust.js';
import { fsckStrict, git, scratch } from '../../helpers/git.js';

const { repo: newRepo, dir: newDir } = scratch();
const CLOCK = () => 1_764_000_000_000;
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'leads-deploy', effect: 'allow', match: { ns: 'ops', type: 'deploy.*', actor: '@leads' } },
    { id: 'no-ops', effect: 'deny', match: { ns: 'ops' }, reason: 'ops is for leads' },
    { id: 'rest', effect: 'allow', match: {}, unless: { actor: 'user:mallory' } },
  ],
};

function bundle(policy: unknown, extra: Record<string, string> = {}): string {
  const dir = newDir();
  writeFileSync(join(dir, 'policy.json'), JSON.stringify(policy));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

function setup(): { dir: string; ledger: Ledger } {
  const dir = newRepo();
  const repo = openRepository(dir);
  const ledger: Ledger = { objects: repo.objects, refs: repo.refs, keyDir: join(newDir(), 'keys'), clock: CLOCK };
  for (const [actor, groups] of [
    ['user:alice', ['@leads']],
    ['user:bob', []],
    ['user:mallory', []],
  ] as const) {
    const { publicKey } = createKey(ledger.keyDir, actor);
    updateTrust(ledger.objects, ledger.refs, CLOCK, `add ${actor}`, (graph) => addActorKey(graph, actor, publicKey, groups));
  }
  return { dir, ledger };
}

before(() => blake3Ready());

describe('policy evaluation', () => {
  test('first matching rule wins; unless and groups; deny by default', () => {
    const policy = checkPolicy(POLICY);
    const trust = emptyTrust();
    addActorKey(trust, 'user:alice', 'ed25519:00', ['@leads']);
    const decide = (ns: string, type: string, actor: string) => evaluate(policy, trust, { ns, type, actor });
    assert.deepEqual(decide('ops', 'deploy.started', 'user:alice'), {
      allow: true,
      rule: 'leads-deploy',
      reason: 'allowed by rule leads-deploy',
    });
    assert.deepEqual(decide('ops', 'deploy.started', 'user:bob'), { allow: false, rule: 'no-ops', reason: 'ops is for leads' });
    assert.equal(decide('billing', 'x', 'user:bob').allow, true);
    assert.equal(decide('billing', 'x', 'user:mallory').rule, 'default');
    assert.equal(decide('billing', 'x', 'user:mallory').allow, false);
  });

  test('read rules: first match wins, deny by default', () => {
    const policy = checkPolicy({
      version: 1,
      rules: [],
      read: [
        { id: 'private', effect: 'deny', path: 'private/*' },
        { id: 'leads-all', effect: 'allow', path: '*', actor: '@leads' },
        { id: 'public', effect: 'allow', path: 'public/*' },
      ],
    });
    const trust = emptyTrust();
    addActorKey(trust, 'user:alice', 'ed25519:00', ['@leads']);
    assert.equal(evaluateRead(policy, trust, 'user:alice', 'private/salaries').rule, 'private');
    assert.equal(evaluateRead(policy, trust, 'user:alice', 'ops/deploys').allow, true);
    assert.equal(evaluateRead(policy, trust, 'user:bob', 'public/readme').allow, true);
    assert.deepEqual(evaluateRead(policy, trust, 'user:bob', 'ops/deploys'), {
      allow: false,
      rule: 'default',
      reason: 'no read rule allows it',
    });
  });

  test('malformed policies are refused with invalid_policy', () => {
    for (const bad of [
      {},
      { version: 2, rules: [] },
      { version: 1, rules: [{ id: 'a', effect: 'maybe', match: {} }] },
      { version: 1, rules: [{ id: 'a', effect: 'allow', match: { colour: 'red' } }] },
      {
        version: 1,
        rules: [
          { id: 'a', effect: 'allow', match: {} },
          { id: 'a', effect: 'deny', match: {} },
        ],
      },
    ]) {
      assert.throws(() => checkPolicy(bad), isCode('invalid_policy'), JSON.stringify(bad));
    }
  });
});

describe('policy bundles and the gate', () => {
  test('publish, activate fast-forward only, and record policy_root in events', async () => {
    const { dir, ledger } = setup();
    const first = publishBundle(ledger.objects, ledger.refs, CLOCK, bundle(POLICY));
    assert.equal(publishBundle(ledger.objects, ledger.refs, CLOCK, bundle(POLICY)).created, false);
    activateBundle(ledger.objects, ledger.refs, first.bundleId);
    assert.equal(git(dir, ['rev-parse', ACTIVE_POLICY]).trim(), first.commit);
    assert.match(git(dir, ['log', '-1', '--format=%(trailers:key=Policy-Code-Root,valueonly)', first.ref]).trim(), /^sha256:[0-9a-f]{64}$/);
    const [added] = await appendEvents(ledger, [{ ns: 'ops', type: 'deploy.started', actor: 'user:alice', payload: {} }]);
    assert.equal(readEvent(ledger.objects, ledger.refs, added?.commit as string).envelope.policy_root, first.commit);
    // A second bundle published on top of the active one activates; an unrelated one does not.
    const second = publishBundle(ledger.objects, ledger.refs, CLOCK, bundle({ ...POLICY, default: 'allow' }));
    const sibling = publishBundle(ledger.objects, ledger.refs, CLOCK, bundle({ ...POLICY, default: 'allow' }, { 'README.md': 'x' }));
    activateBundle(ledger.objects, ledger.refs, second.bundleId);
    assert.throws(() => activateBundle(ledger.objects, ledger.refs, sibling.bundleId), isCode('non_fast_forward'));
    assert.equal(git(dir, ['rev-parse', ACTIVE_POLICY]).trim(), second.commit);
    assert.throws(() => activateBundle(ledger.objects, ledger.refs, 'f'.repeat(64)), isCode('policy_not_found'));
    fsckStrict(dir);
  });

  test('a denied event leaves the journal untouched and writes exactly one deny audit commit', async () => {
    const { dir, ledger } = setup();
    activateBundle(ledger.objects, ledger.refs, publishBundle(ledger.objects, ledger.refs, CLOCK, bundle(POLICY)).bundleId);
    await appendEvents(ledger, [{ ns: 'ops', type: 'deploy.started', actor: 'user:alice', payload: {} }]);
    const journals = git(dir, ['for-each-ref', 'refs/gatos/journal/']);
    const ulid = '01KB0000000000000000000001';
    await assert.rejects(
      appendEvents(ledger, [
        { ns: 'billing', type: 'invoice', actor: 'user:bob', payload: {} },
        { ns: 'ops', type: 'deploy.started', actor: 'user:bob', payload: {}, ulid },
      ]),
      (err: unknown) => isCode('POLICY_DENY')(err) && ((err as GatosError).data.denied as unknown[]).length === 1,
    );
    assert.equal(git(dir, ['for-each-ref', 'refs/gatos/journal/']), journals, 'no journal moved, not even for the allowed event');
    const audits = git(dir, ['for-each-ref', '--format=%(refname)', 'refs/gatos/audit/policy/deny/']).trim().split('\n');
    assert.deepEqual(audits, [`refs/gatos/audit/policy/deny/${ulid}`]);
    assert.equal(git(dir, ['rev-list', '--count', audits[0] as string]).trim(), '1');
    const decision = JSON.parse(git(dir, ['show', `${audits[0]}:audit/decision.json`])) as Record<string, string>;
    assert.equal(decision.rule, 'no-ops');
    assert.equal(decision.actor, 'user:bob');
    assert.equal(decision.target, 'refs/gatos/journal/ops/user/bob');
    assert.equal(git(dir, ['log', '-1', '--format=%(trailers:key=Decision,valueonly)', audits[0] as string]).trim(), 'deny');
    fsckStrict(dir);
  });

  test('a bundle without policy.json, or with a broken one, is refused', () => {
    const { ledger } = setup();
    const empty = newDir();
    mkdirSync(join(empty, 'sub'));
    assert.throws(() => publishBundle(ledger.objects, ledger.refs, CLOCK, empty), isCode('invalid_policy'));
    assert.throws(() => publishBundle(ledger.objects, ledger.refs, CLOCK, bundle({ version: 1 })), isCode('invalid_policy'));
    assert.deepEqual(ledger.refs.list('refs/gatos/policies/'), []);
  });
});
