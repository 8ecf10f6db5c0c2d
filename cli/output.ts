/**
 * Output for the CLI: one JSON document (or JSON lines) with `--json`, text for humans
 * otherwise; progress goes to stderr, redrawn in place on a TTY and as JSON records in `--json`.
 */
export class Output {
  private lastProgress = 0;

  constructor(
    readonly json: boolean,
    private readonly stdout: NodeJS.WriteStream = process.stdout,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Prints the command's result: `value` as JSON, or `human` text. */
  result(value: unknown, human: string): void {
    this.stdout.write(this.json ? `${JSON.stringify(value)}\n` : human.endsWith('\n') ? human : `${human}\n`);
  }

  line(text: string): void {
    if (!this.json) this.stdout.write(`${text}\n`);
  }

  /** Reports progress at most ~10 times a second; `final` forces the last report. */
  progress(label: string, done: number, total: number, final = false): void {
    const now = Date.now();
    if (!final && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    if (this.json) {
      this.stderr.write(`${JSON.stringify({ progress: label, done, total })}\n`);
    } else if (this.stderr.isTTY) {
      const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
      this.stderr.write(`\r${label}: ${done}/${total} (${percent}%)${final ? '\n' : ''}`);
    }
  }
}
