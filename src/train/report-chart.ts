// One chart of report.html as an inline SVG figure: nice ticks, a legend, the series' points as JSON for the
// page's hover, and on request a log-scale variant and a smoothed line that the page's toggles switch between
// (CSS on the figure's data-scale / data-smooth). Not the page (report.ts) nor its script (report-page.js).

import { logAxis, niceAxis, smooth, tickLabel, type Axis } from './report-scale.ts';

export interface Series {
  name: string;
  color: string;
  points: [number, number][]; // (step, value)
  dots?: boolean; // sparse series (eval): points, not smoothed
}

export interface ChartSpec {
  id: string;
  title: string;
  series: Series[];
  xMax: number;
  toggles?: boolean; // offer smoothing and a log scale (the loss chart)
}

const W = 640, H = 300, PAD = { left: 58, right: 16, top: 30, bottom: 40 };
const PLOT_W = W - PAD.left - PAD.right, PLOT_H = H - PAD.top - PAD.bottom;

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const f1 = (v: number) => v.toFixed(1);

/** The y axis and lines of one scale: `g` holds them, shown when the figure's data-scale is `scale`. */
function scaleGroup(scale: 'linear' | 'log', axis: Axis, series: Series[], smoothed: (number[] | null)[], x: (v: number) => number): string {
  const t = scale === 'log' ? Math.log10 : (v: number) => v;
  const y = (v: number) => PAD.top + PLOT_H * (1 - (t(v) - t(axis.lo)) / (t(axis.hi) - t(axis.lo)));
  const grid = axis.ticks.map((v) => `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${f1(y(v))}" y2="${f1(y(v))}" class="grid"/>` +
    `<text x="${PAD.left - 6}" y="${f1(y(v) + 4)}" text-anchor="end">${tickLabel(v)}</text>`).join('');
  const path = (pts: [number, number][]) => pts.map((p, i) => `${i ? 'L' : 'M'}${f1(x(p[0]))},${f1(y(p[1]))}`).join('');
  const lines = series.map((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (scale === 'linear' || p[1] > 0));
    if (s.dots) return `<path d="${path(pts)}" stroke="${s.color}" fill="none" stroke-width="1.5"/>` + pts.map((p) => `<circle cx="${f1(x(p[0]))}" cy="${f1(y(p[1]))}" r="3" fill="${s.color}"/>`).join('');
    const sm = smoothed[i];
    const raw = `<path class="${sm ? 'raw smoothable' : 'raw'}" d="${path(pts)}" stroke="${s.color}" fill="none" stroke-width="2"/>`;
    if (!sm) return raw;
    const smPts = s.points.map((p, j) => [p[0], sm[j]!] as [number, number]).filter((p) => Number.isFinite(p[1]) && (scale === 'linear' || p[1] > 0));
    return raw + `<path class="smoothed" d="${path(smPts)}" stroke="${s.color}" fill="none" stroke-width="2.5"/>`;
  }).join('');
  return `<g class="scale-${scale}">${grid}${lines}</g>`;
}

export function chart(c: ChartSpec): string {
  const values = c.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const head = `<figcaption><span class="title">${escapeHtml(c.title)}</span>${c.toggles
    ? '<span class="toggles"><label><input type="checkbox" data-toggle="smooth"> smooth</label><label><input type="checkbox" data-toggle="log"> log scale</label></span>'
    : ''}</figcaption>`;
  if (values.length === 0) return `<figure class="chart" id="${c.id}">${head}<p class="empty">no data yet</p></figure>`;
  const xAxis = niceAxis(0, Math.max(1, c.xMax), 6, true);
  const xMax = Math.max(1, c.xMax);
  const x = (v: number) => PAD.left + (PLOT_W * v) / xMax;
  const smoothed = c.series.map((s) => (c.toggles && !s.dots && s.points.length > 2 ? smooth(s.points.map((p) => p[1])) : null));
  const groups = [scaleGroup('linear', niceAxis(Math.min(...values), Math.max(...values)), c.series, smoothed, x)];
  const positive = values.filter((v) => v > 0);
  if (c.toggles && positive.length) groups.push(scaleGroup('log', logAxis(Math.min(...positive), Math.max(...positive)), c.series, smoothed, x));
  const xTicks = xAxis.ticks.filter((v) => v <= xMax).map((v) =>
    `<line x1="${f1(x(v))}" x2="${f1(x(v))}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom + 4}" class="axis"/><text x="${f1(x(v))}" y="${H - PAD.bottom + 17}" text-anchor="middle">${v}</text>`).join('');
  const legend = c.series.map((s, i) =>
    `<rect x="${PAD.left + 8 + i * 96}" y="10" width="14" height="4" rx="2" fill="${s.color}"/><text x="${PAD.left + 28 + i * 96}" y="16">${escapeHtml(s.name)}</text>`).join('');
  const data = JSON.stringify({ xMax, left: PAD.left, width: PLOT_W, viewWidth: W, series: c.series.map((s, i) => ({ name: s.name, color: s.color, points: s.points, smoothed: smoothed[i] })) });
  return `<figure class="chart" id="${c.id}" data-scale="linear" data-smooth="off">${head}<div class="plot">` +
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(c.title)} by optimizer step">` +
    `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom}" class="axis"/>${groups.join('')}${xTicks}` +
    `<text x="${PAD.left + PLOT_W / 2}" y="${H - 6}" text-anchor="middle" class="label">optimizer step</text>${legend}` +
    `<line class="cursor" x1="0" x2="0" y1="${PAD.top}" y2="${H - PAD.bottom}" visibility="hidden"/>` +
    `<rect class="hit" x="${PAD.left}" y="${PAD.top}" width="${PLOT_W}" height="${PLOT_H}" fill="transparent"/></svg>` +
    `<div class="tip" hidden></div></div><script type="application/json" class="chart-data">${data.replace(/</g, '\\u003c')}</script></figure>`;
}
