/**
 * Where GATOS names live in ref paths (docs/decisions/0002): an actor `<kind>:<name>` takes two
 * components `<kind>/<name>`, a namespace may take several, and journal refs parse from the right.
 *
 * @example
 *   journalRef('gatos/jobs', 'user:alice'); // 'refs/gatos/journal/gatos/jobs/user/alice'
 *   parseJournalRef('refs/gatos/journal/ops/agent/bot'); // { ns: 'ops', actor: 'agent:bot' }
 */
import { GatosError } from '../errors.js';
import { assertRefComponent } from './refname.js';

export const JOURNAL_PREFIX = 'refs/gatos/journal/';
const ACTOR_RE = /^(user|agent|service):([A-Za-z0-9._-]+)$/;

/** Validates an actor id and returns its two ref-path components. */
export function actorPath(actor: string): string {
  const match = ACTOR_RE.exec(actor);
  if (!match)
    throw new GatosError(
      'invalid_argument',
      `actor must look like user:<name>, agent:<name> or service:<name>, got ${JSON.stringify(actor)}`,
      { actor },
    );
  return `${match[1]}/${assertRefComponent(match[2] as string, 'actor name')}`;
}

/** Validates a namespace (one or more `/`-separated components) and returns it. */
export function namespacePath(ns: string): string {
  for (const part of ns.split('/')) assertRefComponent(part, 'namespace component');
  return ns;
}

export function journalRef(ns: string, actor: string): string {
  return `${JOURNAL_PREFIX}${namespacePath(ns)}/${actorPath(actor)}`;
}

export function parseJournalRef(name: string): { ns: string; actor: string } | undefined {
  if (!name.startsWith(JOURNAL_PREFIX)) return undefined;
  const parts = name.slice(JOURNAL_PREFIX.length).split('/');
  if (parts.length < 3) return undefined;
  const [kind, actorName] = parts.slice(-2) as [string, string];
  const actor = `${kind}:${actorName}`;
  if (!ACTOR_RE.test(actor)) return undefined;
  return { ns: parts.slice(0, -2).join('/'), actor };
}
