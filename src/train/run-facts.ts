// The facts report.html opens with: when the run started, how long it has run, on what backend, which model
// and data, how many tokens it has trained on and how fast, and its peak memory. Not their display (report.ts).

import type { Backend } from '../engine/backend.ts';
import { formatDuration } from './progress.ts';

export interface RunFactsInput {
  startedAt: Date;
  seconds: number; // wall time so far
  be: Backend;
  model: string;
  data: string; // e.g. "51,760 examples (9.1M tokens); validation: 2,000 split off"
  tokens: number; // non-padding tokens trained on since the process started
  trainSeconds: number; // time in training steps (evaluations and saves excluded)
}

const GIB = 1024 ** 3;

/** Peak resident memory of this process (GiB) and, on cuda, the most device memory the backend held (else null). */
export function peakMemoryGib(be: Backend): { host: number; device: number | null } {
  const device = (be as { memory?: () => { peak: number } }).memory?.();
  return { host: (process.resourceUsage().maxRSS * 1024) / GIB, device: device ? device.peak / GIB : null };
}

/** The peak that bounds the run: device memory where the backend reports it, else host RSS (metrics.jsonl's peak_memory_gib). */
export function boundingPeakGib(be: Backend): number {
  const p = peakMemoryGib(be);
  return Number((p.device ?? p.host).toFixed(3));
}

export function peakMemory(be: Backend): string {
  const { host, device } = peakMemoryGib(be);
  const rss = `${host.toFixed(2)} GiB host (peak RSS)`;
  return device !== null ? `${device.toFixed(2)} GiB GPU, ${rss}` : rss;
}

/** "2026-12-01 20:10 UTC" */
export function formatDate(d: Date): string {
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function runFacts(i: RunFactsInput): Record<string, string> {
  const describe = (i.be as { describe?: () => string }).describe?.();
  return {
    started: formatDate(i.startedAt),
    duration: formatDuration(i.seconds),
    backend: describe ? `${i.be.name} (${describe})` : i.be.name,
    model: i.model,
    data: i.data,
    'tokens seen': i.tokens.toLocaleString('en-US'),
    'average tokens/s': i.trainSeconds > 0 ? Math.round(i.tokens / i.trainSeconds).toLocaleString('en-US') : '–',
    'peak memory': peakMemory(i.be),
  };
}
