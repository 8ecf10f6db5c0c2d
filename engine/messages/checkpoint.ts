/**
 * Consumer checkpoints at `refs/gatos/consumers/<group>/<topic>`: the ref points at a blob
 * holding compact canonical `{"ulid","commit"?}` (schema `consumer_checkpoint`), moved by
 * compare-and-swap and never backwards (`checkpoint_backwards`); writing the same ULID again
 * is a no-op.
 */
import { canonicalize, parseJson } from '../codec/canonical-json.js';
import { assertUlid } from '../codec/ulid.js';
import { GatosError, hasCode } from '../errors.js';
import { assertOid, ZERO_OID } from '../git/oid.js';
import type { Oid } from '../git/ports.js';
import { type CheckpointFact, checkpointChannel, emit } from './diagnostics.js';
import type { Bus } from './publish.js';
import { assertConsumerGroup, assertTopic, checkpointRef } from './topics.js';

export interface Checkpoint {
  ulid: string;
  commit?: Oid;
}

export function readCheckpoint(bus: Bus, group: string, topic: string): Checkpoint | undefined {
  const oid = bus.refs.resolve(checkpointRef(assertConsumerGroup(group), assertTopic(topic)));
  if (!oid) return undefined;
  return parseJson(Buffer.from(bus.objects.read(oid).body).toString('utf8')) as Checkpoint;
}

export function writeCheckpoint(bus: Bus, group: string, topic: string, checkpoint: Checkpoint): { ref: string; moved: boolean } {
  try {
    const result = moveCheckpoint(bus, group, topic, checkpoint);
    emit<CheckpointFact>(checkpointChannel, { topic, group, result: 'ok' });
    return result;
  } catch (err) {
    const conflict = err instanceof GatosError && err.kind === 'conflict';
    emit<CheckpointFact>(checkpointChannel, { topic, group, result: conflict ? 'conflict' : 'error' });
    throw err;
  }
}

function moveCheckpoint(bus: Bus, group: string, topic: string, checkpoint: Checkpoint): { ref: string; moved: boolean } {
  const ref = checkpointRef(assertConsumerGroup(group), assertTopic(topic));
  assertUlid(checkpoint.ulid);
  if (checkpoint.commit !== undefined) assertOid(checkpoint.commit, 'commit');
  for (let attempt = 0; ; attempt++) {
    const current = bus.refs.resolve(ref) ?? ZERO_OID;
    if (current !== ZERO_OID) {
      const previous = parseJson(Buffer.from(bus.objects.read(current).body).toString('utf8')) as Checkpoint;
      if (previous.ulid === checkpoint.ulid) return { ref, moved: false };
      if (previous.ulid > checkpoint.ulid) {
        throw new GatosError(
          'checkpoint_backwards',
          `checkpoint ${group}/${topic} is at ${previous.ulid}; refusing to move it back to ${checkpoint.ulid}`,
          { group, topic, current: previous.ulid, requested: checkpoint.ulid },
        );
      }
    }
    const body: Checkpoint = { ulid: checkpoint.ulid };
    if (checkpoint.commit !== undefined) body.commit = checkpoint.commit;
    const blob = bus.objects.write('blob', Buffer.from(canonicalize(body)));
    try {
      bus.refs.transaction().update(ref, blob, current).commit();
      return { ref, moved: true };
    } catch (err) {
      if (attempt >= 4 || !(hasCode(err, 'HEAD_CONFLICT') || hasCode(err, 'ref_locked'))) throw err;
    }
  }
}
