/**
 * Time enters the engine only through a clock (milliseconds since the epoch), so tests and
 * fixtures can fix it. `GATOS_CLOCK_MS` pins the CLI's clock for reproducible runs.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const fixed = env.GATOS_CLOCK_MS;
  if (fixed === undefined || fixed === '') return systemClock;
  const ms = Number(fixed);
  if (!Number.isSafeInteger(ms) || ms < 0) return systemClock;
  return () => ms;
}

/** `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339 UTC, whole seconds) of a clock reading. */
export function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
