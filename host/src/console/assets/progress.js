// The progress bar and status badges a Key Result shows in the list and in
// its details.

import { h } from './dom.js';
import { formatPercent, formatValue } from './format.js';

export function progressSummary(kr) {
  const target = formatValue(kr.target, kr.unit, kr.currency);
  if (kr.current_value === null || kr.current_value === undefined) return `No value yet; target ${target}`;
  const value = formatValue(kr.current_value, kr.unit, kr.currency);
  const percent = kr.progress_percent === null || kr.progress_percent === undefined
    ? '' : ` (${formatPercent(kr.progress_percent)})`;
  return `${value} of ${target}${percent}`;
}

// A native <progress> (a progressbar to assistive technology) with the value
// and target in words beside it and as its value text.
export function progressView(kr, id) {
  const summary = progressSummary(kr);
  const bar = h('progress', {
    id,
    max: 100,
    value: kr.progress_percent ?? 0,
    'aria-label': `Progress of ${kr.title}`,
    'aria-valuetext': summary,
  });
  return h('div', { class: 'progress' }, bar, h('span', { class: 'progress-text', text: summary }));
}

// What needs attention on a linked Key Result, as short badges.
export function badges(link) {
  if (!link) return null;
  const list = [];
  if (link.state === 'broken') list.push(['broken', 'broken']);
  if (link.state === 'paused') list.push(['paused', 'paused']);
  if (link.connection_status === 'needs-sign-in') list.push(['needs sign-in', 'needs-sign-in']);
  if (link.connection_status === 'disabled') list.push(['connection disabled', 'disabled']);
  if (link.stale) list.push(['stale', 'stale']);
  if (list.length === 0) return null;
  return h('span', { class: 'badges' },
    list.map(([text, kind]) => h('span', { class: `badge badge-${kind}`, text })));
}

// The Dynamics 365 mark, decorative: the link or heading around it names it.
export function d365Icon() {
  return h('img', { src: '/assets/d365.svg', alt: '', width: 20, height: 20, class: 'd365-icon' });
}
