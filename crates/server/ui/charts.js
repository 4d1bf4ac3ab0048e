// Hand-written SVG line charts for training curves: one chart per metric,
// train (solid) against validation (dashed) per epoch. No library: the data
// is a few hundred points at most, and the UI must work offline.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// "Nice" tick values covering [lo, hi].
function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const start = Math.floor(lo / step) * step;
  const out = [];
  for (let v = start; v <= hi + step * 0.5; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v) {
  if (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

// Groups a per-epoch history ([{epoch, loss, val_loss, accuracy, ...}]) into
// one chart per metric: {metric: {train: [[epoch, v]], val: [[epoch, v]]}}.
export function groupHistory(history) {
  const groups = new Map();
  for (const row of history) {
    for (const [k, v] of Object.entries(row)) {
      if (k === 'epoch' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      const val = k.startsWith('val_');
      const name = val ? k.slice(4) : k;
      if (!groups.has(name)) groups.set(name, { train: [], val: [] });
      groups.get(name)[val ? 'val' : 'train'].push([row.epoch, v]);
    }
  }
  // loss first, then the rest by name
  return [...groups.entries()].sort(([a], [b]) => (a === 'loss' ? -1 : b === 'loss' ? 1 : a.localeCompare(b)));
}

// An SVG line chart of one metric. `totalEpochs` fixes the x range while a
// job is still training, so the curve grows from left to right.
export function lineChart(metric, { train, val }, totalEpochs) {
  const W = 420, H = 240, L = 52, R = 12, T = 28, B = 36;
  const all = [...train, ...val];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xMax = Math.max(totalEpochs || 0, ...xs, 1);
  const xMin = Math.min(1, ...xs);
  const yt = ticks(Math.min(...ys), Math.max(...ys));
  const y0 = yt[0], y1 = yt[yt.length - 1];
  const sx = (x) => L + ((x - xMin) / Math.max(xMax - xMin, 1)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const last = (s) => (s.length ? fmt(s[s.length - 1][1]) : 'none');
  const label = `${metric} per epoch: train ${last(train)}, validation ${last(val)} at epoch ${Math.max(...xs, 0)}`;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart', 'data-metric': metric });
  svg.append(el('title', {}, label));
  svg.append(el('text', { x: L, y: 16, class: 'chart-title' }, metric));
  for (const v of yt) {
    svg.append(el('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: 'grid' }));
    svg.append(el('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
  }
  const xt = ticks(xMin, xMax, 6).filter((v) => Number.isInteger(v) && v >= xMin && v <= xMax);
  for (const v of xt) {
    svg.append(el('line', { x1: sx(v), x2: sx(v), y1: H - B, y2: H - B + 4, class: 'axis' }));
    svg.append(el('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle', class: 'tick' }, String(v)));
  }
  svg.append(el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  svg.append(el('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'tick' }, 'epoch'));
  const line = (pts, cls) => {
    if (!pts.length) return;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    svg.append(el('path', { d, class: `series ${cls}` }));
    for (const [x, y] of pts) svg.append(el('circle', { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 2.5, class: `dot ${cls}` }));
  };
  line(train, 'train');
  line(val, 'val');
  // legend
  const lg = el('g', { transform: `translate(${W - R - 150},8)` });
  lg.append(el('line', { x1: 0, x2: 18, y1: 6, y2: 6, class: 'series train' }));
  lg.append(el('text', { x: 22, y: 10, class: 'tick' }, 'train'));
  lg.append(el('line', { x1: 62, x2: 80, y1: 6, y2: 6, class: 'series val' }));
  lg.append(el('text', { x: 84, y: 10, class: 'tick' }, 'validation'));
  svg.append(lg);
  return svg;
}

// Every metric's chart for a history, in a container element.
export function charts(history, totalEpochs) {
  const box = document.createElement('div');
  box.className = 'charts';
  for (const [metric, series] of groupHistory(history)) box.append(lineChart(metric, series, totalEpochs));
  return box;
}
