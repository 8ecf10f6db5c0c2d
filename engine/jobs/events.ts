/**
 * Job transitions on the message plane. Every transition is published on `gatos.jobs.events`;
 * the ones that make a job claimable (created, retry, released) also go to the discovery topic
 * `gatos.jobs.pending` that workers subscribe to. Refs are the record and move first; the
 * messages follow (at-least-once: a crash in between loses a notification, never a job, and
 * workers also scan refs).
 */
import type { Oid } from '../git/ports.js';
import { type Bus, type DraftEnvelope, publish } from '../messages/publish.js';

export const PENDING_TOPIC = 'gatos.jobs.pending';
export const EVENTS_TOPIC = 'gatos.jobs.events';

export type Transition = 'created' | 'claimed' | 'running' | 'retry' | 'released' | 'succeeded' | 'failed' | 'aborted';

export interface TransitionNote {
  transition: Transition;
  job_id: string;
  commit: Oid;
  attempt?: number;
  worker?: string;
  exit_code?: number;
  reason?: string;
  not_before?: string;
}

const CLAIMABLE = new Set<Transition>(['created', 'retry', 'released']);

function draft(ns: string, note: TransitionNote): DraftEnvelope {
  const { transition, ...payload } = note;
  return { ns, type: `job.${transition}`, payload: { ...payload, state: transition } };
}

/** Publishes transitions in order; failures go to `onError` (the refs already hold the truth). */
export async function announce(bus: Bus, ns: string, notes: readonly TransitionNote[], onError?: (err: unknown) => void): Promise<void> {
  if (notes.length === 0) return;
  try {
    await publish(
      bus,
      EVENTS_TOPIC,
      notes.map((note) => draft(ns, note)),
      { attempts: 12 },
    );
    const claimable = notes.filter((note) => CLAIMABLE.has(note.transition));
    if (claimable.length > 0)
      await publish(
        bus,
        PENDING_TOPIC,
        claimable.map((note) => draft(ns, note)),
        { attempts: 12 },
      );
  } catch (err) {
    onError?.(err);
  }
}
