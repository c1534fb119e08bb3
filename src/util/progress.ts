/**
 * A tiny progress bar for long command-line work. On a TTY it redraws one line on stderr
 * (at most every 100 ms); otherwise it prints a plain line every `stepPercent` % so piped
 * logs stay readable. No dependencies.
 */

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface ProgressOptions {
  /** What is being counted, e.g. "devices booted". */
  label: string;
  total: number;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Non-TTY: one line every this many percent (default 10). */
  stepPercent?: number;
  /** Redraw interval on a TTY (ms, default 100). */
  minIntervalMs?: number;
  /** Force TTY or plain rendering (default: stream.isTTY). */
  tty?: boolean;
  now?: () => number;
}

export class ProgressBar {
  private done = 0;
  private lastDraw = -Infinity;
  private lastStep = -1;
  private printed = -1;
  private finished = false;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly started: number;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? !!this.stream.isTTY;
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  /** Changes the total (when it is known only once the work started). */
  setTotal(total: number): this {
    this.opts.total = total;
    return this;
  }

  /** Sets the count of finished items (clamped to total). */
  update(done: number): void {
    if (this.finished) return;
    this.done = Math.max(0, Math.min(done, this.opts.total));
    if (this.tty) {
      const t = this.now();
      if (t - this.lastDraw >= (this.opts.minIntervalMs ?? 100) || this.done === this.opts.total) {
        this.lastDraw = t;
        this.stream.write(`\r${this.line(true)}\x1b[K`);
      }
      return;
    }
    const step = Math.max(1, this.opts.stepPercent ?? 10);
    const bucket = Math.floor(this.percent() / step);
    if (bucket > this.lastStep) {
      this.lastStep = bucket;
      this.printed = this.done;
      this.stream.write(`${this.line(false)}\n`);
    }
  }

  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** Draws the final state and ends the line (TTY). Idempotent. */
  finish(): void {
    if (this.finished) return;
    if (this.tty) this.stream.write(`\r${this.line(true)}\x1b[K\n`);
    else if (this.printed !== this.done) this.stream.write(`${this.line(false)}\n`);
    this.finished = true;
  }

  private percent(): number {
    return this.opts.total > 0 ? (100 * this.done) / this.opts.total : 100;
  }

  /** "label [#####-----] 50% 500/1000 3.2s" (the bar only on a TTY). */
  line(withBar: boolean): string {
    const pct = this.percent();
    const secs = ((this.now() - this.started) / 1000).toFixed(1);
    const tail = `${pct.toFixed(0).padStart(3)}% ${this.done}/${this.opts.total} ${secs}s`;
    if (!withBar) return `${this.opts.label}: ${tail}`;
    const cols = this.stream.columns || 80;
    const width = Math.max(10, Math.min(40, cols - this.opts.label.length - tail.length - 6));
    const filled = Math.round((width * pct) / 100);
    return `${this.opts.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${tail}`;
  }
}
