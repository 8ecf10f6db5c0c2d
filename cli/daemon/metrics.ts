/**
 * The daemon's Prometheus registry for the message plane (`gmp_*`, spec §5). The engine
 * publishes facts on diagnostics channels; this front-end counts them, and computes the gauges
 * from the repository when scraped.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { ulidTime } from '../../engine/codec/ulid.js';
import { readCommit } from '../../engine/git/object-codec.js';
import {
  type CheckpointFact,
  checkpointChannel,
  type PruneFact,
  type PublishFact,
  pruneChannel,
  publishChannel,
  type RotationFact,
  rotationChannel,
} from '../../engine/messages/diagnostics.js';
import type { Bus } from '../../engine/messages/publish.js';
import { CONSUMERS_PREFIX, headRef, listTopics } from '../../engine/messages/topics.js';

export class MessageMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: Array<() => void> = [];

  constructor(bus: Bus) {
    const registers = [this.registry];
    const published = new Counter({
      name: 'gmp_publish_total',
      help: 'Publish calls by topic and result',
      labelNames: ['topic', 'result'],
      registers,
    });
    const checkpoints = new Counter({
      name: 'gmp_checkpoint_writes_total',
      help: 'Checkpoint writes by topic, group and result',
      labelNames: ['topic', 'group', 'result'],
      registers,
    });
    const rotations = new Counter({
      name: 'gmp_segment_rotations_total',
      help: 'Segment rotations by topic and reason',
      labelNames: ['topic', 'reason'],
      registers,
    });
    const pruned = new Counter({ name: 'gmp_prune_segments_total', help: 'Segments pruned by topic', labelNames: ['topic'], registers });
    const skipped = new Counter({
      name: 'gmp_prune_skipped_total',
      help: 'Segments kept by a prune run, by reason',
      labelNames: ['topic', 'reason'],
      registers,
    });
    new Gauge({
      name: 'gmp_head_age_seconds',
      help: 'Seconds since the newest message of each topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const topic of listTopics(bus.refs)) {
          const head = bus.refs.resolve(headRef(topic));
          if (head) this.set({ topic }, Math.max(0, bus.clock() / 1000 - readCommit(bus.objects, head).committer.timestamp));
        }
      },
    });
    new Gauge({
      name: 'gmp_min_checkpoint_ulid',
      help: 'Timestamp (ms) of the oldest consumer checkpoint of each topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        const oldest = new Map<string, number>();
        for (const { name, oid } of bus.refs.list(CONSUMERS_PREFIX)) {
          const topic = name.slice(CONSUMERS_PREFIX.length).split('/').slice(1).join('/');
          const ms = ulidTime((JSON.parse(Buffer.from(bus.objects.read(oid).body).toString('utf8')) as { ulid: string }).ulid);
          oldest.set(topic, Math.min(ms, oldest.get(topic) ?? Number.POSITIVE_INFINITY));
        }
        for (const [topic, ms] of oldest) this.set({ topic }, ms);
      },
    });
    this.on(publishChannel, (fact: PublishFact) => published.inc({ topic: fact.topic, result: fact.result }));
    this.on(checkpointChannel, (fact: CheckpointFact) => checkpoints.inc({ topic: fact.topic, group: fact.group, result: fact.result }));
    this.on(rotationChannel, (fact: RotationFact) => rotations.inc({ topic: fact.topic, reason: fact.reason }));
    this.on(pruneChannel, (fact: PruneFact) => {
      pruned.inc({ topic: fact.topic }, fact.pruned.length);
      for (const s of fact.skipped) skipped.inc({ topic: fact.topic, reason: s.reason });
    });
  }

  private on<T>(target: typeof publishChannel, handler: (fact: T) => void): void {
    const listener = (message: unknown) => handler(message as T);
    target.subscribe(listener);
    this.unsubscribe.push(() => target.unsubscribe(listener));
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}
