// Stop strings over streamed text: text is released as soon as it cannot be the start of a stop string,
// and everything from the first stop string on is dropped (OpenAI's `stop`). Not token-level EOS.

/** Index of the earliest stop string in `text`, or -1. */
export function findStop(text: string, stops: readonly string[]): number {
  let first = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  return first;
}

export class StopMatcher {
  private held = '';
  private done = false;

  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean {
    return this.done;
  }

  /** Adds text; returns the part that is safe to show and whether a stop string has now appeared. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.done) return { text: '', stopped: true };
    this.held += text;
    const at = findStop(this.held, this.stops);
    if (at >= 0) {
      const out = this.held.slice(0, at);
      this.held = '';
      this.done = true;
      return { text: out, stopped: true };
    }
    const keep = this.pendingPrefix();
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { text: out, stopped: false };
  }

  /** At the end: whatever was held back waiting for a stop string that never came. */
  flush(): string {
    const out = this.done ? '' : this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest tail of the held text that begins some stop string. */
  private pendingPrefix(): number {
    let keep = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.held.length); n > keep; n--) {
        if (this.held.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    return keep;
  }
}
