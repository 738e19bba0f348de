// What a user watches during training: a live line on a terminal (step/total, bar, loss, learning rate,
// tokens/s, ETA) cut to the terminal's width so that it never wraps, with log lines printed above it; or, when
// the output is not a terminal, only the log lines (one per --logging_steps, with elapsed time and ETA).

import type { LogEntry } from './loop.ts';
import type { StepResult } from './trainer.ts';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const BAR_MAX = 20, BAR_MIN = 8;

export class Progress {
  private seconds = 0;
  private steps = 0;
  private tokens = 0;
  private lastStep = 0;
  private line = '';
  private readonly started: number;

  constructor(
    readonly totalSteps: number,
    readonly live: boolean,
    private readonly out: (text: string) => void = (t) => process.stderr.write(t),
    private readonly print: (line: string) => void = (l) => console.log(l),
    private readonly columns: () => number | undefined = () => process.stdout.columns ?? process.stderr.columns,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
  }

  /** Seconds left at the mean step time so far. */
  private eta(): number {
    return (this.seconds / this.steps) * (this.totalSteps - this.lastStep);
  }

  /** Tokens trained on and seconds spent in steps so far. */
  totals(): { tokens: number; seconds: number } {
    return { tokens: this.tokens, seconds: this.seconds };
  }

  /** `elapsed 1m02s | ETA 3m10s`: wall time since training started and the time left at the mean step time. */
  timing(): string {
    return `elapsed ${formatDuration((this.now() - this.started) / 1000)} | ETA ${this.steps ? formatDuration(this.eta()) : '?'}`;
  }

  /** A log line, printed above the live line. */
  log(text: string): void {
    if (this.live && this.line) this.out('\r\x1b[2K');
    this.print(text);
    if (this.live && this.line) this.out(this.line);
  }

  step(r: StepResult): void {
    this.seconds += r.seconds;
    this.steps++;
    this.tokens += r.inputTokens;
    this.lastStep = r.step;
    if (!this.live) return;
    this.line = this.render(r);
    this.out('\r\x1b[2K' + this.line);
  }

  /** The live line in the terminal's width less one column (a full last column wraps on some terminals): narrower terminals lose the bar's length, then lr, then tok/s, then the bar. */
  private render(r: StepResult): string {
    const width = Math.max(20, (this.columns() || 80) - 1);
    const counter = `${String(r.step).padStart(String(this.totalSteps).length)}/${this.totalSteps}`;
    const pct = `${Math.floor((100 * r.step) / this.totalSteps)}%`;
    const loss = `loss ${r.loss.toFixed(4)}`, lr = `lr ${r.learningRate.toExponential(2)}`;
    const speed = `${Math.round(this.tokens / this.seconds)} tok/s`, eta = `ETA ${formatDuration(this.eta())}`;
    for (const fields of [[loss, lr, speed, eta], [loss, speed, eta], [loss, eta]]) {
      const tail = `${pct} | ${fields.join(' | ')}`;
      const bar = Math.min(BAR_MAX, width - counter.length - tail.length - 4); // " [" + "] "
      if (bar >= BAR_MIN) {
        const filled = Math.round((bar * r.step) / this.totalSteps);
        return `${counter} [${'█'.repeat(filled)}${'░'.repeat(bar - filled)}] ${tail}`;
      }
    }
    return `${counter} ${pct} | ${loss} | ${eta}`.slice(0, width);
  }

  /** Ends the live line. */
  finish(): void {
    if (this.live && this.line) this.out('\n');
    this.line = '';
  }
}

/** One log or eval entry as a line; `timing` (Progress.timing) ends a training line. */
export function formatLog(e: LogEntry, totalSteps: number, timing?: string): string {
  return e.kind === 'train'
    ? `step ${e.step}/${totalSteps} | epoch ${e.epoch.toFixed(2)} | loss ${e.loss.toFixed(4)} | lr ${e.learning_rate.toExponential(3)} | ` +
        `grad_norm ${e.grad_norm.toFixed(4)} | ${Math.round(e.tokens_per_second)} tok/s${timing ? ` | ${timing}` : ''}`
    : `step ${e.step}/${totalSteps} | eval_loss ${e.eval_loss.toFixed(4)} (${e.eval_tokens} tokens)`;
}
