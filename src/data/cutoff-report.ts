// The warning when cutoff_len cuts many examples (Chinese text under a LLaMA tokenizer often takes 2–3 byte tokens a
// character, so a cutoff sized for English cuts far more): how many are cut, and the cutoff that would keep 95%
// whole (the 95th percentile of the uncut lengths). Computation only; the caller prints it.

import type { Example } from './examples.ts';
import { percentile } from './inspect.ts';

/** The share of cut examples above which finetune warns. */
export const CUT_WARNING_SHARE = 0.05;

/** The warning, or null when at most 5% of the examples are longer than cutoffLen. */
export function cutoffWarning(examples: readonly Example[], cutoffLen: number, source: string): string | null {
  const lengths = examples.map((e) => e.fullLength ?? e.input_ids.length).sort((a, b) => a - b);
  const cut = lengths.filter((n) => n > cutoffLen).length;
  if (cut <= CUT_WARNING_SHARE * lengths.length) return null;
  const p95 = percentile(lengths, 95);
  return `${source}: ${cut} of ${lengths.length} examples (${((100 * cut) / lengths.length).toFixed(1)}%) are longer than --cutoff_len ${cutoffLen} and are cut ` +
    `(the end of their response is not trained); 95% of the examples fit in ${p95} tokens: pass --cutoff_len ${p95} to keep them whole ` +
    '(`alpaca-lora inspect-data` shows the spread)';
}
