// report.html in output_dir: train and eval loss, learning rate and tokens/s as inline SVG charts, the
// run's settings and latest figures. One self-contained file that opens offline; no scripts, no network.

import { writeFileAtomic } from '../util/atomic-write.ts';
import type { LogEntry } from './loop.ts';

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dots?: boolean;
}

const W = 640, H = 260, PAD = { left: 64, right: 16, top: 28, bottom: 36 };

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-2 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

function ticks(lo: number, hi: number, n = 5): number[] {
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

function lineChart(title: string, series: Series[], xMax: number): string {
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  if (all.length === 0) return `<figure><figcaption>${escapeHtml(title)}</figcaption><p class="empty">no data yet</p></figure>`;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5 * Math.abs(lo || 1) * 0.1, hi + 0.5 * Math.abs(hi || 1) * 0.1];
  const x = (v: number) => PAD.left + ((W - PAD.left - PAD.right) * v) / Math.max(1, xMax);
  const y = (v: number) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - (v - lo) / (hi - lo));
  const grid = ticks(lo, hi).map((v) =>
    `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`).join('');
  const xTicks = ticks(0, xMax).map((v) => `<text x="${x(v)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${Math.round(v)}</text>`).join('');
  const lines = series.map((s) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    const path = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    const dots = s.dots ? pts.map((p) => `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`).join('') : '';
    return `<path d="${path}" stroke="${s.color}" fill="none" stroke-width="2"/>${dots}`;
  }).join('');
  const legend = series.map((s, i) =>
    `<rect x="${PAD.left + 8 + i * 110}" y="8" width="12" height="4" fill="${s.color}"/><text x="${PAD.left + 24 + i * 110}" y="14">${escapeHtml(s.name)}</text>`).join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">` +
    `${grid}${xTicks}<text x="${W / 2}" y="${H - 4}" text-anchor="middle">optimizer step</text>${lines}${legend}</svg></figure>`;
}

export interface ReportInput {
  title: string;
  status: string; // e.g. "running: step 40 of 168" or "finished"
  totalSteps: number;
  settings: Record<string, unknown>;
  history: readonly LogEntry[];
}

export function renderReport(r: ReportInput): string {
  const train = r.history.filter((e) => e.kind === 'train');
  const evals = r.history.filter((e) => e.kind === 'eval');
  const lastTrain = train.at(-1), lastEval = evals.at(-1);
  const best = evals.reduce<(typeof evals)[number] | undefined>((b, e) => (b === undefined || e.eval_loss < b.eval_loss ? e : b), undefined);
  const figures: [string, string][] = [
    ['status', r.status],
    ['last train loss', lastTrain ? `${lastTrain.loss.toFixed(4)} at step ${lastTrain.step}` : '–'],
    ['last eval loss', lastEval ? `${lastEval.eval_loss.toFixed(4)} at step ${lastEval.step}` : '–'],
    ['best eval loss', best ? `${best.eval_loss.toFixed(4)} at step ${best.step}` : '–'],
    ['tokens/s', lastTrain ? Math.round(lastTrain.tokens_per_second).toString() : '–'],
  ];
  const row = ([k, v]: [string, unknown]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #555; } .grid { stroke: #eee; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 2px 12px 2px 0; font-variant-numeric: tabular-nums; }
th { font-weight: 500; color: #555; } .empty { color: #999; }
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<table>${figures.map(row).join('')}</table>
<div class="charts">
${lineChart('loss', [
    { name: 'train', color: '#1f77b4', points: train.map((e) => [e.step, e.loss]) },
    { name: 'eval', color: '#d62728', points: evals.map((e) => [e.step, e.eval_loss]), dots: true },
  ], r.totalSteps)}
${lineChart('learning rate', [{ name: 'learning rate', color: '#2ca02c', points: train.map((e) => [e.step, e.learning_rate]) }], r.totalSteps)}
${lineChart('tokens per second', [{ name: 'tokens/s', color: '#9467bd', points: train.map((e) => [e.step, e.tokens_per_second]) }], r.totalSteps)}
${lineChart('gradient norm (before clipping)', [{ name: 'grad norm', color: '#ff7f0e', points: train.map((e) => [e.step, e.grad_norm]) }], r.totalSteps)}
</div>
<h2>Settings</h2>
<table>${Object.entries(r.settings).map(row).join('')}</table>
</body></html>
`;
}

export async function writeReport(path: string, r: ReportInput): Promise<void> {
  await writeFileAtomic(path, renderReport(r));
}
