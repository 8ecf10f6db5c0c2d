/** One line of the bench table, and small helpers the bench sections share. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline?: string;
  ratio?: number;
  target?: string;
  met?: boolean;
}

/** p50 of a list of figures (milliseconds, seconds). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Two settings measured in paired rounds: each round runs both, taking turns at going first (A
 * then B, then B then A), and gives one ratio, A's seconds over B's; the figure is the median of
 * the rounds' ratios. This VM's speed drifts by a third within minutes: both runs of a round meet
 * the same minute, so a round's ratio moves much less than either setting's median does (the
 * ratio of two medians taken over all rounds swung across its target between runs).
 */
export function pairedRounds<T extends { seconds: number }>(
  rounds: number,
  a: () => T,
  b: () => T,
): { a: T[]; b: T[]; ratio: number; ratios: number[] } {
  const runs: { a: T[]; b: T[] } = { a: [], b: [] };
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let runA: T;
    let runB: T;
    if (round % 2 === 0) {
      runA = a();
      runB = b();
    } else {
      runB = b();
      runA = a();
    }
    runs.a.push(runA);
    runs.b.push(runB);
    ratios.push(runA.seconds / runB.seconds);
  }
  return { ...runs, ratio: median(ratios), ratios };
}

/** The range of a paired measurement's round ratios, as the bench table shows it beside the median. */
export function spread(ratios: readonly number[]): string {
  return `rounds ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x`;
}
