// An organization's Key Results or Projects. One request loads the whole list, links
// included; it is polled every 5 seconds and only rows whose data changed are
// rebuilt, with the focus kept where it was.

import { api, url } from './api.js';
import { errorBox, h, keepFocus, showError } from './dom.js';
import { badges, d365Icon, progressView } from './progress.js';

const REFRESH_MS = 5000;

function row(kr, kind) {
  const link = kr.link || null;
  const details = `#/${kind.path}/${kr.id}`;
  return h('tr', { 'data-kr-id': kr.id },
    h('th', { scope: 'row' },
      h('a', { id: `kr-${kr.id}-title`, href: details, class: 'kr-title', text: kr.title })),
    h('td', { class: 'kr-owner', text: kr.owner }),
    kind.key === 'project' ? h('td', { class: 'kr-due', text: kr.due_date || '—' }) : null,
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
        href: `#/${kind.path}/${kr.id}/edit`,
        'aria-label': `Edit ${kr.title}`,
        text: 'Edit',
      })));
}

export function showKeyResults(screen) {
  const orgId = Number(screen.params[0]);
  const kind = screen.kind;
  const org = screen.orgById(orgId);
  screen.heading(org ? `${kind.plural} of ${org.name}` : kind.plural);

  const error = errorBox('kr-error');
  const newButton = h('button', {
    id: 'new-kr',
    type: 'button',
    text: `New ${kind.noun}`,
    onclick: () => screen.go(`#/orgs/${orgId}/${kind.path}/new`),
  });
  const tbody = h('tbody');
  const table = h('table', { id: 'kr-list', class: 'kr-table' },
    h('caption', { class: 'visually-hidden', text: `${kind.plural} with owner and progress` }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: kind.noun }),
      h('th', { scope: 'col', text: 'Owner' }),
      kind.key === 'project' ? h('th', { scope: 'col', text: 'Due' }) : null,
      h('th', { scope: 'col', text: 'Progress' }),
      h('th', { scope: 'col', text: 'Actions' }))),
    tbody);
  const loading = h('p', { class: 'muted', id: 'kr-loading', text: `Loading ${kind.plural}…` });
  const empty = h('p', { id: 'kr-empty', hidden: true, text: `No ${kind.plural} yet. Create the first with “New ${kind.noun}”.` });
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
          const element = row(kr, kind);
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
      const list = await api.get(url`/api/v1/organizations/${orgId}/${kind.path}`);
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
