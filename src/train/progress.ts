// What a user watches during training: a live line on a terminal (step/total, bar, loss, learning rate,
// tokens/s, ETA) that log lines print above, or plain log lines when the output is not a terminal.

import type { LogEntry } from './loop.ts';
import type { StepResult } from './trainer.ts';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  private seconds = 0;
  private steps = 0;
  private tokens = 0;
  private line = '';

  constructor(
    readonly totalSteps: number,
    readonly live: boolean,
    private readonly out: (text: string) => void = (t) => process.stderr.write(t),
    private readonly print: (line: string) => void = (l) => console.log(l),
  ) {}

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
    if (!this.live) return;
    const width = 20;
    const filled = Math.round((width * r.step) / this.totalSteps);
    const eta = (this.seconds / this.steps) * (this.totalSteps - r.step);
    this.line = `${String(r.step).padStart(String(this.totalSteps).length)}/${this.totalSteps} ` +
      `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.floor((100 * r.step) / this.totalSteps)}% | ` +
      `loss ${r.loss.toFixed(4)} | lr ${r.learningRate.toExponential(2)} | ${Math.round(this.tokens / this.seconds)} tok/s | ETA ${formatDuration(eta)}`;
    this.out('\r\x1b[2K' + this.line);
  }

  /** Ends the live line. */
  finish(): void {
    if (this.live && this.line) this.out('\n');
    this.line = '';
  }
}

/** One log or eval entry as a line. */
export function formatLog(e: LogEntry, totalSteps: number): string {
  return e.kind === 'train'
    ? `step ${e.step}/${totalSteps} | epoch ${e.epoch.toFixed(2)} | loss ${e.loss.toFixed(4)} | lr ${e.learning_rate.toExponential(3)} | ` +
        `grad_norm ${e.grad_norm.toFixed(4)} | ${Math.round(e.tokens_per_second)} tok/s`
    : `step ${e.step}/${totalSteps} | eval_loss ${e.eval_loss.toFixed(4)} (${e.eval_tokens} tokens)`;
}
