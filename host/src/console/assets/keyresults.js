// An organization's Key Results. One request loads the whole list, links
// included; it is polled every 5 seconds and only rows whose data changed are
// rebuilt, with the focus kept where it was.

import { api, url } from './api.js';
import { errorBox, h, keepFocus, showError } from './dom.js';
import { badges, d365Icon, progressView } from './progress.js';

const REFRESH_MS = 5000;

function row(kr) {
  const link = kr.link || null;
  const details = `#/key-results/${kr.id}`;
  return h('tr', { 'data-kr-id': kr.id },
    h('th', { scope: 'row' },
      h('a', { id: `kr-${kr.id}-title`, href: details, class: 'kr-title', text: kr.title })),
    h('td', { class: 'kr-owner', text: kr.owner }),
    h('td', { class: 'kr-progress' },
      h('div', { class: 'progress-line' },
        progressView(kr, `kr-${kr.id}-progress`),
        link ? h('a', {
          id: `kr-${kr.id}-d365`,
          href: details,
          class: 'd365-link',
          'aria-label': `Dynamics 365 details for ${kr.title}`,
        }, d365Icon()) : null),
      badges(link)),
    h('td', { class: 'kr-actions' },
      h('a', {
        id: `kr-${kr.id}-edit`,
        href: `#/key-results/${kr.id}/edit`,
        'aria-label': `Edit ${kr.title}`,
        text: 'Edit',
      })));
}

export function showKeyResults(screen) {
  const orgId = Number(screen.params[0]);
  const org = screen.orgById(orgId);
  screen.heading(org ? `Key Results of ${org.name}` : 'Key Results');

  const error = errorBox('kr-error');
  const newButton = h('button', {
    id: 'new-kr',
    type: 'button',
    text: 'New Key Result',
    onclick: () => screen.go(`#/orgs/${orgId}/key-results/new`),
  });
  const tbody = h('tbody');
  const table = h('table', { id: 'kr-list', class: 'kr-table' },
    h('caption', { class: 'visually-hidden', text: 'Key Results with owner and progress' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Key Result' }),
      h('th', { scope: 'col', text: 'Owner' }),
      h('th', { scope: 'col', text: 'Progress' }),
      h('th', { scope: 'col', text: 'Actions' }))),
    tbody);
  const loading = h('p', { class: 'muted', id: 'kr-loading', text: 'Loading Key Results…' });
  const empty = h('p', { id: 'kr-empty', hidden: true, text: 'No Key Results yet. Create the first with “New Key Result”.' });
  const updated = h('p', { class: 'muted small', id: 'kr-updated' });
  screen.root.append(h('div', { class: 'toolbar' }, newButton), error, loading,
    h('div', { class: 'table-wrap' }, table), empty, updated);

  const rows = new Map(); // Key Result id → { signature, element }

  function update(list) {
    keepFocus(tbody, () => {
      const ids = new Set(list.map((kr) => kr.id));
      for (const [id, entry] of rows) {
        if (!ids.has(id)) {
          entry.element.remove();
          rows.delete(id);
        }
      }
      list.forEach((kr, index) => {
        const signature = JSON.stringify(kr);
        let entry = rows.get(kr.id);
        if (!entry || entry.signature !== signature) {
          const element = row(kr);
          if (entry) entry.element.replaceWith(element);
          entry = { signature, element };
          rows.set(kr.id, entry);
        }
        // Move a row only when it is out of place: moving drops its focus.
        if (tbody.children[index] !== entry.element) {
          tbody.insertBefore(entry.element, tbody.children[index] || null);
        }
      });
    });
    empty.hidden = list.length > 0;
  }

  let timer = null;
  screen.onLeave(() => clearTimeout(timer));

  async function refresh() {
    let keepPolling = true;
    try {
      const list = await api.get(url`/api/v1/organizations/${orgId}/key-results`);
      if (!screen.alive()) return;
      showError(error, null);
      update(list);
      updated.textContent = `Updated at ${new Date().toLocaleTimeString()}; the list refreshes every 5 seconds.`;
    } catch (failure) {
      if (!screen.alive()) return;
      showError(error, failure);
      // An organization out of reach will not come back by asking again.
      keepPolling = failure.status !== 404 && failure.status !== 403 && failure.status !== 401;
    }
    loading.remove();
    if (keepPolling) timer = setTimeout(refresh, REFRESH_MS);
  }
  refresh();
}
