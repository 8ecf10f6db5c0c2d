/**
 * Named diagnostics of the message plane (node:diagnostics_channel). The engine only publishes
 * facts; front-ends (the daemon's Prometheus registry, logs) subscribe and decide what to do.
 */
import { channel } from 'node:diagnostics_channel';

export const publishChannel = channel('gatos:messages:publish');
export const rotationChannel = channel('gatos:messages:rotation');
export const checkpointChannel = channel('gatos:messages:checkpoint');
export const pruneChannel = channel('gatos:messages:prune');

export type Result = 'ok' | 'conflict' | 'error';

export interface PublishFact {
  topic: string;
  result: Result;
  messages: number;
}

export interface RotationFact {
  topic: string;
  reason: 'hour' | 'max_messages' | 'max_bytes';
  segment: string;
}

export interface CheckpointFact {
  topic: string;
  group: string;
  result: Result;
}

export interface PruneFact {
  topic: string;
  pruned: Array<{ ref: string; first_ulid: string; last_ulid: string; message_count: number; approximate_bytes: number }>;
  skipped: Array<{ ref: string; reason: string }>;
  gating_checkpoint_ulid: string | null;
}

export function emit<T>(target: typeof publishChannel, fact: T): void {
  if (target.hasSubscribers) target.publish(fact);
}
