/**
 * Live subscription to a topic: delivers every message after a cursor, then new ones as the
 * head moves (polling the head ref every 25 ms, one ref read per tick while idle). Returns a stop
 * function. Used by the daemon's `messages.subscribe` and `gatos messages tail`.
 */

import type { Bus } from './publish.js';
import { type ReadMessage, readMessages } from './read.js';
import { assertTopic, headRef } from './topics.js';

export interface Subscription {
  stop(): void;
}

export function subscribe(
  bus: Bus,
  topic: string,
  since: string | undefined,
  onMessage: (message: ReadMessage) => void,
  onError: (err: unknown) => void,
  pollMs = 25,
): Subscription {
  assertTopic(topic);
  let cursor = since;
  let lastHead: string | undefined;
  const poll = () => {
    const head = bus.refs.resolve(headRef(topic));
    if (!head || head === lastHead) return;
    lastHead = head;
    for (;;) {
      const page = readMessages(bus, topic, cursor === undefined ? { limit: 512 } : { since: cursor, limit: 512 });
      for (const message of page.messages) onMessage(message);
      if (page.next_since === null) return;
      cursor = page.next_since;
    }
  };
  const tick = () => {
    try {
      poll();
    } catch (err) {
      onError(err);
    }
  };
  tick();
  const timer = setInterval(tick, pollMs);
  return { stop: () => clearInterval(timer) };
}
