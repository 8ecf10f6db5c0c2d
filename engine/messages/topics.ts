/**
 * Topic and consumer-group names in ref paths (decision 0006). A topic is one or more
 * `/`-separated components of `[A-Za-z0-9_-]` words joined by single dots (`jobs.pending`,
 * `team/ci`); a component may not be `head` nor all digits (those name the topic's head and its
 * dated segment directories), and no topic may be a component-prefix of another (`a` and `a/b`
 * would need `refs/.../a` to be both a directory and a topic). Groups are single components.
 */
import { GatosError } from '../errors.js';
import type { Oid, RefStore } from '../git/ports.js';
import { assertRefComponent } from '../git/refname.js';

export const MESSAGES_PREFIX = 'refs/gatos/messages/';
export const CONSUMERS_PREFIX = 'refs/gatos/consumers/';
const COMPONENT_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

function invalidTopic(topic: string, why: string): GatosError {
  return new GatosError('invalid_topic', `invalid topic ${JSON.stringify(topic)}: ${why}`, { topic });
}

export function assertTopic(topic: string): string {
  if (topic === '') throw invalidTopic(topic, 'it is empty');
  for (const part of topic.split('/')) {
    if (!COMPONENT_RE.test(part))
      throw invalidTopic(topic, `component ${JSON.stringify(part)} must be words of A-Z a-z 0-9 _ - joined by single dots`);
    if (part === 'head') throw invalidTopic(topic, 'a component may not be "head" (it names the topic head ref)');
    if (/^\d+$/.test(part)) throw invalidTopic(topic, 'a component may not be all digits (those name segment directories)');
    try {
      assertRefComponent(part, 'topic component');
    } catch (err) {
      throw invalidTopic(topic, (err as Error).message);
    }
  }
  return topic;
}

export function assertConsumerGroup(group: string): string {
  if (!COMPONENT_RE.test(group))
    throw new GatosError(
      'invalid_argument',
      `consumer group must be one component of A-Z a-z 0-9 _ - and dots, got ${JSON.stringify(group)}`,
      { group },
    );
  return assertRefComponent(group, 'consumer group');
}

export function headRef(topic: string): string {
  return `${MESSAGES_PREFIX}${topic}/head`;
}

export function checkpointRef(group: string, topic: string): string {
  return `${CONSUMERS_PREFIX}${group}/${topic}`;
}

/** `YYYY/MM/DD/HH` (UTC) of a clock reading: the dated directory of a segment. */
export function segmentPrefix(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}`;
}

export function segmentRef(topic: string, prefix: string, segmentUlid: string): string {
  return `${MESSAGES_PREFIX}${topic}/${prefix}/${segmentUlid}`;
}

export interface SegmentEntry {
  ref: string;
  ulid: string;
  tip: Oid;
}

/** The topic's segment refs (exactly `<topic>/YYYY/MM/DD/HH/<ULID>`), oldest segment first. */
export function listSegments(refs: RefStore, topic: string): SegmentEntry[] {
  const base = `${MESSAGES_PREFIX}${topic}/`;
  const out: SegmentEntry[] = [];
  for (const { name, oid } of refs.list(base)) {
    const rest = name.slice(base.length).split('/');
    if (
      rest.length !== 5 ||
      !/^\d{4}$/.test(rest[0] as string) ||
      !rest.slice(1, 4).every((p) => /^\d{2}$/.test(p)) ||
      !ULID_RE.test(rest[4] as string)
    )
      continue;
    out.push({ ref: name, ulid: rest[4] as string, tip: oid });
  }
  return out.sort((a, b) => (a.ulid < b.ulid ? -1 : a.ulid > b.ulid ? 1 : 0));
}

/** Topics that exist (have a head). */
export function listTopics(refs: RefStore): string[] {
  return refs
    .list(MESSAGES_PREFIX)
    .filter(({ name }) => name.endsWith('/head'))
    .map(({ name }) => name.slice(MESSAGES_PREFIX.length, -'/head'.length));
}

/** Refuses a new topic that is a component-prefix of an existing one, or the other way round. */
export function assertNoTopicClash(refs: RefStore, topic: string): void {
  for (const other of listTopics(refs)) {
    if (other === topic) continue;
    if (other.startsWith(`${topic}/`) || topic.startsWith(`${other}/`)) {
      throw invalidTopic(topic, `it nests with the existing topic ${JSON.stringify(other)}`);
    }
  }
}
