// report.html's script, inlined into the page (it loads nothing): the smoothing and log-scale toggles (kept in
// the URL's #fragment so that a reload keeps them), the hover read-out of each chart, and, while the run goes
// on, a reload every few seconds. Not the charts themselves: report-chart.ts draws them in the page.

const RELOAD_SECONDS = Number(document.body.dataset.reload || 0);
const state = new Set(location.hash.slice(1).split(',').filter(Boolean));

function applyToggles() {
  for (const figure of document.querySelectorAll('figure.chart')) {
    figure.dataset.smooth = state.has('smooth') ? 'on' : 'off';
    figure.dataset.scale = state.has('log') && figure.querySelector('.scale-log') ? 'log' : 'linear';
    for (const box of figure.querySelectorAll('input[data-toggle]')) box.checked = state.has(box.dataset.toggle);
  }
}

for (const box of document.querySelectorAll('input[data-toggle]')) {
  box.addEventListener('change', () => {
    if (box.checked) state.add(box.dataset.toggle);
    else state.delete(box.dataset.toggle);
    history.replaceState(null, '', `#${[...state].join(',')}`);
    applyToggles();
  });
}

const fmt = (v) => (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5) ? v.toExponential(3) : String(Number(v.toPrecision(5))));

for (const figure of document.querySelectorAll('figure.chart')) {
  const dataNode = figure.querySelector('.chart-data');
  if (!dataNode) continue;
  const data = JSON.parse(dataNode.textContent);
  const svg = figure.querySelector('svg');
  const cursor = svg.querySelector('.cursor');
  const tip = figure.querySelector('.tip');
  const steps = [...new Set(data.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const hide = () => {
    cursor.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  };
  svg.addEventListener('mouseleave', hide);
  svg.addEventListener('mousemove', (event) => {
    const box = svg.getBoundingClientRect();
    const vx = ((event.clientX - box.left) / box.width) * data.viewWidth;
    const at = ((vx - data.left) / data.width) * data.xMax;
    if (at < -data.xMax * 0.02 || at > data.xMax * 1.02 || steps.length === 0) return hide();
    const step = steps.reduce((best, s) => (Math.abs(s - at) < Math.abs(best - at) ? s : best), steps[0]);
    const cx = data.left + (data.width * step) / data.xMax;
    cursor.setAttribute('x1', cx);
    cursor.setAttribute('x2', cx);
    cursor.setAttribute('visibility', 'visible');
    const smoothing = figure.dataset.smooth === 'on';
    const rows = data.series.flatMap((s) => {
      const i = s.points.findIndex((p) => p[0] === step);
      if (i < 0) return [];
      const value = fmt(s.points[i][1]) + (smoothing && s.smoothed ? ` (smoothed ${fmt(s.smoothed[i])})` : '');
      return [`<div><i style="background:${s.color}"></i>${s.name} <b>${value}</b></div>`];
    });
    tip.innerHTML = `<div class="step">step ${step}</div>${rows.join('')}`;
    tip.hidden = false;
    const left = (cx / data.viewWidth) * box.width;
    tip.style.left = `${left + 12 + tip.offsetWidth > box.width ? Math.max(0, left - 12 - tip.offsetWidth) : left + 12}px`;
  });
}

applyToggles();
if (RELOAD_SECONDS > 0) setTimeout(() => location.reload(), RELOAD_SECONDS * 1000);
