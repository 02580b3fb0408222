// A small line chart of a Key Result's value over its successful syncs,
// oldest on the left, drawn as SVG with createElementNS.

import { h, svg } from './dom.js';
import { formatDate } from './format.js';

const WIDTH = 320;
const HEIGHT = 96;
const PAD = 8;

// runs: newest first, as GET …/history returns them; format: value → text.
export function valueChart(runs, format) {
  const points = runs
    .filter((run) => run.status === 'success' && typeof run.value === 'number')
    .reverse();
  if (points.length < 2) {
    return h('p', {
      class: 'muted',
      id: 'history-chart',
      text: points.length === 1
        ? `One successful sync so far (${format(points[0].value)}); the chart starts with the second.`
        : 'No successful syncs yet.',
    });
  }
  const values = points.map((p) => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const x = (i) => PAD + (i * (WIDTH - 2 * PAD)) / (points.length - 1);
  // A flat history is drawn across the middle.
  const y = (v) => (high === low ? HEIGHT / 2 : HEIGHT - PAD - ((v - low) * (HEIGHT - 2 * PAD)) / (high - low));
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const first = points[0];
  const last = points[points.length - 1];
  const label = `Value over the last ${points.length} successful syncs: from ${format(first.value)} on ${formatDate(first.started_at)} to ${format(last.value)} on ${formatDate(last.started_at)}; lowest ${format(low)}, highest ${format(high)}.`;

  const chart = svg('svg', {
    id: 'history-chart',
    class: 'chart',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': label,
  },
  svg('title', { text: label }),
  svg('line', { class: 'chart-axis', x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD }),
  svg('polyline', { class: 'chart-line', points: line, fill: 'none' }),
  svg('circle', { class: 'chart-dot', cx: x(points.length - 1), cy: y(last.value), r: 3 }));
  return h('figure', { class: 'chart-figure' }, chart,
    h('figcaption', { class: 'muted small', text: `Lowest ${format(low)} · highest ${format(high)} · latest ${format(last.value)}` }));
}
