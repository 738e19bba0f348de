// report.html in output_dir: the run's facts at the top (date, duration, backend, model, data, tokens, speed,
// memory), then loss (with smoothing and log-scale toggles), learning rate, tokens/s and gradient norm side by side,
// each with a hover read-out, then the settings. One self-contained file that opens offline (its script and styles
// are inline, it loads nothing); while the run goes on it reloads itself. Not the charts' drawing (report-chart.ts).

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import type { LogEntry } from './loop.ts';
import { chart, escapeHtml } from './report-chart.ts';

const SCRIPT = readFileSync(new URL('./report-page.js', import.meta.url), 'utf8');
const RELOAD_SECONDS = 10;

export interface ReportInput {
  title: string;
  status: string; // e.g. "running: step 40 of 168" or "finished"
  /** True while the run goes on: the page reloads itself every few seconds. */
  running?: boolean;
  totalSteps: number;
  /** The run's facts, shown first, in order (date, duration, backend, model, data size, tokens, tok/s, memory). */
  facts?: Record<string, string>;
  settings: Record<string, unknown>;
  history: readonly LogEntry[];
}

const STYLE = `
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 20px 28px; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 19px; margin: 0 0 4px; overflow-wrap: anywhere; } h2 { font-size: 15px; margin: 28px 0 8px; }
.status { display: inline-block; padding: 1px 10px; border-radius: 10px; font-size: 13px; background: #ddf4ff; color: #0a3069; }
.status.done { background: #dafbe1; color: #116329; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px; margin: 14px 0 18px; }
.fact { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 10px; min-width: 0; }
.fact .k { font-size: 12px; color: #57606a; } .fact .v { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
@media (min-width: 2200px) { .charts { grid-template-columns: repeat(4, minmax(0, 1fr)); } }
@media (max-width: 900px) { .charts { grid-template-columns: minmax(0, 1fr); } }
figure.chart { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px 4px; min-width: 0; }
figcaption { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
figcaption .title { font-weight: 600; } .toggles label { margin-left: 12px; font-size: 13px; color: #57606a; cursor: pointer; }
.plot { position: relative; } svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: #57606a; } .grid { stroke: #eaeef2; } .axis { stroke: #8c959f; } .cursor { stroke: #8c959f; stroke-dasharray: 3 3; }
.chart[data-scale="linear"] .scale-log, .chart[data-scale="log"] .scale-linear { display: none; }
.chart[data-smooth="off"] .smoothed { display: none; } .chart[data-smooth="on"] .smoothable { opacity: 0.25; }
.tip { position: absolute; top: 34px; pointer-events: none; background: rgba(255,255,255,0.96); border: 1px solid #d0d7de; border-radius: 6px;
  padding: 4px 8px; font-size: 12px; white-space: nowrap; box-shadow: 0 2px 6px rgba(0,0,0,0.08); }
.tip .step { color: #57606a; } .tip i { display: inline-block; width: 10px; height: 3px; margin-right: 5px; vertical-align: middle; }
.empty { color: #8c959f; }
table { border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
th, td { text-align: left; padding: 3px 12px; font-variant-numeric: tabular-nums; border-bottom: 1px solid #eaeef2; } th { font-weight: 500; color: #57606a; }
@media (max-width: 520px) { body { padding: 12px; } }
`;

export function renderReport(r: ReportInput): string {
  const train = r.history.filter((e) => e.kind === 'train');
  const evals = r.history.filter((e) => e.kind === 'eval');
  const lastTrain = train.at(-1), lastEval = evals.at(-1);
  const best = evals.reduce<(typeof evals)[number] | undefined>((b, e) => (b === undefined || e.eval_loss < b.eval_loss ? e : b), undefined);
  const facts: [string, string][] = [
    ...Object.entries(r.facts ?? {}),
    ['last train loss', lastTrain ? `${lastTrain.loss.toFixed(4)} at step ${lastTrain.step}` : '–'],
    ['last eval loss', lastEval ? `${lastEval.eval_loss.toFixed(4)} at step ${lastEval.step}` : '–'],
    ['best eval loss', best ? `${best.eval_loss.toFixed(4)} at step ${best.step}` : '–'],
  ];
  const fact = ([k, v]: [string, string]) => `<div class="fact"><div class="k">${escapeHtml(k)}</div><div class="v">${escapeHtml(v)}</div></div>`;
  const row = ([k, v]: [string, unknown]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`;
  const series = (name: string, color: string, key: 'learning_rate' | 'tokens_per_second' | 'grad_norm') =>
    [{ name, color, points: train.map((e) => [e.step, e[key]] as [number, number]) }];
  const charts = [
    chart({ id: 'loss', title: 'loss', xMax: r.totalSteps, toggles: true, series: [
      { name: 'train', color: '#0969da', points: train.map((e) => [e.step, e.loss]) },
      { name: 'eval', color: '#cf222e', points: evals.map((e) => [e.step, e.eval_loss]), dots: true },
    ] }),
    chart({ id: 'learning-rate', title: 'learning rate', xMax: r.totalSteps, series: series('learning rate', '#1a7f37', 'learning_rate') }),
    chart({ id: 'tokens-per-second', title: 'tokens per second', xMax: r.totalSteps, series: series('tokens/s', '#8250df', 'tokens_per_second') }),
    chart({ id: 'grad-norm', title: 'gradient norm (before clipping)', xMax: r.totalSteps, series: series('grad norm', '#bc4c00', 'grad_norm') }),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(r.title)}</title>
<style>${STYLE}</style></head>
<body data-reload="${r.running ? RELOAD_SECONDS : 0}">
<h1>${escapeHtml(r.title)}</h1>
<span class="status${r.running ? '' : ' done'}">${escapeHtml(r.status)}${r.running ? ` · this page reloads every ${RELOAD_SECONDS}s` : ''}</span>
<div class="facts">${facts.map(fact).join('')}</div>
<div class="charts">
${charts.join('\n')}
</div>
<h2>Settings</h2>
<table>${Object.entries(r.settings).map(row).join('')}</table>
<script>${SCRIPT}</script>
</body></html>
`;
}

export async function writeReport(path: string, r: ReportInput): Promise<void> {
  await writeFileAtomic(path, renderReport(r));
}
