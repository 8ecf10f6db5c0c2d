import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { blake3Ready, contentIdOfJson } from '../../../engine/codec/blake3.js';
import { GatosError } from '../../../engine/errors.js';
import { openRepository } from '../../../engine/git/repository.js';
import {
  approve,
  type Governance,
  grant,
  isGrantUsable,
  parseQuorum,
  parseTtl,
  propose,
  revoke,
  status,
} from '../../../engine/ledger/governance.js';
import { createKey } from '../../../engine/ledger/keys.js';
import { activateBundle, publishBundle } from '../../../engine/ledger/policy-store.js';
import { addActorKey, readTrust, updateTrust } from '../../../engine/ledger/trust.js';
import { fsckStrict, git, scratch } from '../../helpers/git.js';

const { repo: newRepo, dir: newDir } = scratch();
const isCode = (code: string) => (err: unknown) => err instanceof GatosError && err.code === code;
const T0 = Date.parse('2025-11-24T12:00:00Z');

/** Three leads and an outsider, with a clock the test moves. */
function setup(): { dir: string; gov: Governance; advance: (ms: number) => void } {
  const dir = newRepo();
  const repo = openRepository(dir);
  let now = T0;
  const gov: Governance = { objects: repo.objects, refs: repo.refs, keyDir: join(newDir(), 'keys'), clock: () => now };
  for (const [actor, groups] of [
    ['user:alice', ['@leads']],
    ['user:bob', ['@leads']],
    ['user:carol', ['@leads']],
    ['user:eve', []],
  ] as const) {
    const { publicKey } = createKey(gov.keyDir, actor);
    updateTrust(gov.objects, gov.refs, gov.clock, `add ${actor}`, (graph) => addActorKey(graph, actor, publicKey, groups));
  }
  return {
    dir,
    gov,
    advance: (ms) => {
      now += ms;
    },
  };
}

before(() => blake3Ready());

describe('quorum and ttl expressions', () => {
  test('N-of-M@group and N-of-@group against the trust graph', () => {
    const { gov } = setup();
    const { graph } = readTrust(gov.objects, gov.refs);
    assert.deepEqual(parseQuorum('2-of-3@leads', graph), { need: 2, group: '@leads' });
    assert.deepEqual(parseQuorum('2-of-@leads', graph), { need: 2, group: '@leads' });
    assert.throws(() => parseQuorum('2-of-4@leads', graph), isCode('invalid_argument'));
    assert.throws(() => parseQuorum('4-of-@leads', graph), isCode('invalid_argument'));
    assert.throws(() => parseQuorum('1-of-@nobody', graph), isCode('unknown_group'));
    assert.equal(parseTtl('PT72H'), 72 * 3600 * 1000);
    assert.equal(parseTtl('P1DT30M'), (24 * 60 + 30) * 60 * 1000);
    assert.throws(() => parseTtl('72h'), isCode('invalid_argument'));
  });
});

describe('SPEC §16.1 governance', () => {
  test('2-of-3: one approval is denied, two are granted; the proof recomputes', () => {
    const { dir, gov } = setup();
    const { proposalId } = propose(gov, {
      action: 'publish.artifact',
      target: 'gatos://assets/model.bin',
      quorum: '2-of-3@leads',
      actor: 'user:alice',
    });
    assert.equal(status(gov, proposalId).state, 'proposal');
    approve(gov, proposalId, 'user:alice');
    assert.equal(status(gov, proposalId).state, 'partial');
    // The same signer again, and an outsider, do not count.
    assert.equal(approve(gov, proposalId, 'user:alice').created, false);
    approve(gov, proposalId, 'user:eve');
    assert.throws(
      () => grant(gov, proposalId, 'user:alice'),
      (err: unknown) => isCode('quorum_not_met')(err) && (err as GatosError).data.have === 1,
    );
    approve(gov, proposalId, 'user:bob');
    const granted = grant(gov, proposalId, 'user:alice');
    const state = status(gov, proposalId);
    assert.equal(state.state, 'granted');
    assert.equal(state.approvals.length, 2);
    const hex = proposalId.slice('blake3:'.length);
    const poc = JSON.parse(git(dir, ['show', `refs/gatos/audit/proofs/governance/${hex}:governance/proof-of-consensus.json`])) as {
      approvals: Array<{ signer: string }>;
    };
    assert.equal(contentIdOfJson(poc), granted.proofOfConsensus);
    assert.deepEqual(
      poc.approvals.map((a) => a.signer),
      [...poc.approvals.map((a) => a.signer)].sort(),
    );
    assert.equal(
      git(dir, ['log', '-1', '--format=%(trailers:key=Proof-Of-Consensus,valueonly)', `refs/gatos/grants/${hex}`]).trim(),
      granted.proofOfConsensus,
    );
    assert.ok(isGrantUsable(gov, granted.grantId));
    fsckStrict(dir);
  });

  test('a revoked grant is not usable', () => {
    const { gov } = setup();
    const { proposalId } = propose(gov, { action: 'rotate.keys', target: 'gatos://trust', quorum: '1-of-@leads', actor: 'user:bob' });
    approve(gov, proposalId, 'user:carol');
    const { grantId } = grant(gov, proposalId, 'user:carol');
    assert.ok(isGrantUsable(gov, grantId));
    revoke(gov, grantId, 'superseded by a newer rotation', 'user:alice');
    assert.equal(isGrantUsable(gov, grantId), false);
    assert.equal(status(gov, proposalId).state, 'revoked');
  });

  test('an expired proposal can be neither approved nor granted', () => {
    const { gov, advance } = setup();
    const { proposalId } = propose(gov, {
      action: 'publish.artifact',
      target: 'gatos://assets/x',
      quorum: '1-of-@leads',
      ttl: 'PT1H',
      actor: 'user:alice',
    });
    approve(gov, proposalId, 'user:alice');
    advance(3600 * 1000);
    assert.equal(status(gov, proposalId).state, 'expired');
    assert.throws(() => grant(gov, proposalId, 'user:alice'), isCode('proposal_expired'));
    assert.throws(() => approve(gov, proposalId, 'user:bob'), isCode('proposal_expired'));
  });

  test('the active policy sets the quorum and ttl of governed actions', () => {
    const { gov } = setup();
    const bundle = newDir();
    writeFileSync(
      join(bundle, 'policy.json'),
      JSON.stringify({
        version: 1,
        default: 'allow',
        rules: [],
        governance: { 'publish.artifact': { quorum: '3-of-@leads', ttl: 'PT2H' } },
      }),
    );
    activateBundle(gov.objects, gov.refs, publishBundle(gov.objects, gov.refs, gov.clock, bundle).bundleId);
    const { proposalId } = propose(gov, { action: 'publish.artifact', target: 'gatos://assets/y', actor: 'user:alice' });
    const state = status(gov, proposalId);
    assert.equal(state.required_quorum, '3-of-@leads');
    assert.equal(state.expire_at, '2025-11-24T14:00:00Z');
    assert.throws(
      () => propose(gov, { action: 'publish.artifact', target: 'gatos://assets/z', quorum: '1-of-@leads', actor: 'user:alice' }),
      isCode('invalid_argument'),
    );
    assert.throws(
      () => propose(gov, { action: 'ungoverned', target: 'gatos://assets/z', actor: 'user:alice' }),
      isCode('invalid_argument'),
    );
  });

  test('bad input changes nothing', () => {
    const { dir, gov } = setup();
    const before = git(dir, ['for-each-ref']);
    assert.throws(
      () => propose(gov, { action: 'Bad Action', target: 'gatos://x', quorum: '1-of-@leads', actor: 'user:alice' }),
      isCode('invalid_argument'),
    );
    assert.throws(
      () => propose(gov, { action: 'a', target: 'not a uri', quorum: '1-of-@leads', actor: 'user:alice' }),
      isCode('invalid_argument'),
    );
    assert.throws(
      () => propose(gov, { action: 'a', target: 'gatos://x', quorum: '1-of-@leads', actor: 'user:zed' }),
      isCode('unknown_actor'),
    );
    assert.throws(() => approve(gov, `blake3:${'0'.repeat(64)}`, 'user:alice'), isCode('proposal_not_found'));
    assert.throws(() => revoke(gov, `blake3:${'0'.repeat(64)}`, 'x', 'user:alice'), isCode('grant_not_found'));
    assert.equal(git(dir, ['for-each-ref']), before);
  });
});
