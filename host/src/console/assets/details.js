// A Key Result's or Project's details (what the Dynamics 365 icon opens): its
// value and
// progress, the link with names, status, last success, last attempt and next
// sync, the value history, and the actions on the link.

import { api, url } from './api.js';
import { confirmInline, errorBox, facts, field, h, showError, statusBox } from './dom.js';
import {
  aggregationName, connectionStatusName, failureWords, formatDate, formatMoney, formatNumber, formatValue,
} from './format.js';
import { badges, d365Icon, progressView } from './progress.js';
import { valueChart } from './chart.js';

function stateWords(link, kind) {
  if (link.state === 'broken') return `Broken: ${link.state_reason || `link the ${kind.noun} to another metric`}`;
  if (link.state === 'paused') return 'Paused: scheduled syncs wait until the link is resumed.';
  if (link.stopped_because) return `Stopped: ${link.stopped_because}`;
  if (link.failures > 0) return `Active, trying again after ${link.failures} failed sync${link.failures === 1 ? '' : 's'}.`;
  return 'Active';
}

function nextSyncWords(link) {
  if (link.state === 'paused') return 'None while the link is paused.';
  if (link.state !== 'active' || link.stopped_because) return 'None until the problem above is fixed.';
  if (new Date(link.next_run_at).getTime() <= Date.now()) return `Due now (since ${formatDate(link.next_run_at)})`;
  return formatDate(link.next_run_at);
}

function lastAttempt(run) {
  if (!run) return 'None yet.';
  const when = formatDate(run.started_at);
  let words;
  if (run.status === 'success') words = `${when}: succeeded.`;
  else if (run.status === 'running') words = `${when}: still running.`;
  else if (run.status === 'interrupted') words = `${when}: interrupted; the next sync runs it again.`;
  else words = `${when}: failed. ${failureWords(run.error_kind)}`;
  return h('span', { id: 'details-last-attempt' }, words,
    run.status === 'failure' && run.error_message
      ? h('span', { class: 'block muted small', text: `What Dynamics 365 or the host said: ${run.error_message}` })
      : null);
}

// The measured value in the metric's currency, with how many records it came from.
function measuredWords(link, success) {
  if (!success) return 'No successful sync yet.';
  const value = success.value === null || success.value === undefined
    ? 'no value (the column is empty in every row)'
    : success.currency ? formatMoney(success.value, success.currency) : formatNumber(success.value);
  const parts = [value];
  if (success.currency) parts.push(`in ${success.currency} (${link.currency_mode} currency)`);
  if (success.records !== null && success.records !== undefined) {
    parts.push(`from ${formatNumber(success.records)} record${success.records === 1 ? '' : 's'}`);
  }
  return parts.join(' ');
}

// Sync now's refusals, in words: one already running, or Dynamics 365
// asking to wait.
function syncRefusal(failure, kind) {
  if (failure.kind === 'already-running') {
    const since = failure.problem.running_since;
    return `A sync of this ${kind.noun} is already running${since ? ` (since ${formatDate(since)})` : ''}. Its result shows here when it finishes; try again in a moment.`;
  }
  if (failure.status === 429 || failure.kind === 'throttled') {
    const seconds = failure.problem.retry_after_seconds;
    return `Dynamics 365 asked to slow down, so nothing was sent. ${seconds ? `Try again in about ${seconds} seconds.` : 'Try again later.'} Scheduled syncs continue by themselves.`;
  }
  return failure;
}

export function showDetails(screen) {
  const id = Number(screen.params[0]);
  const kind = screen.kind;
  screen.heading(kind.noun);
  const status = statusBox('details-status');
  const error = errorBox('details-error');
  const body = h('div', { class: 'details', id: 'details' }, h('p', { class: 'muted', text: 'Loading…' }));
  screen.root.append(status, error, body);

  // Loads and renders the details and history; true when it did.
  async function load(focusId) {
    let details;
    let history;
    try {
      [details, history] = await Promise.all([
        api.get(url`/api/v1/${kind.path}/${id}`),
        api.get(url`/api/v1/${kind.path}/${id}/history?limit=50`),
      ]);
    } catch (failure) {
      if (screen.alive()) showError(error, failure);
      return false;
    }
    if (!screen.alive()) return false;
    render(details, history);
    if (focusId) document.getElementById(focusId)?.focus();
    return true;
  }

  // Runs an action of a button: disabled while it runs, errors shown, the
  // details reloaded after.
  async function act(button, work, focusId) {
    button.disabled = true;
    showError(error, null);
    status.textContent = '';
    try {
      const message = await work();
      if (await load(focusId)) status.textContent = message;
    } catch (failure) {
      showError(error, failure);
      button.disabled = false;
    }
  }

  async function syncNow(button) {
    button.disabled = true;
    button.textContent = 'Syncing…';
    button.setAttribute('aria-busy', 'true');
    showError(error, null);
    status.textContent = 'Syncing with Dynamics 365…';
    try {
      const result = await api.post(url`/api/v1/${kind.path}/${id}/sync`);
      const kr = result[kind.key];
      const message = result.run.status === 'success'
        ? `Synced: the value is now ${formatValue(kr.current_value, kr.unit, kr.currency)}.`
        : `The sync failed. ${failureWords(result.run.error_kind)}`;
      status.textContent = '';
      if (await load('sync-now')) status.textContent = message;
    } catch (failure) {
      status.textContent = '';
      showError(error, syncRefusal(failure, kind));
      button.disabled = false;
      button.textContent = 'Sync now';
      button.removeAttribute('aria-busy');
    }
  }

  // Progress entered by hand: a check-in, which a linked item's next
  // sync replaces unless its link is paused.
  function checkInForm(kr, link) {
    const value = h('input', { id: 'checkin-value', type: 'number', step: 'any', required: true, autocomplete: 'off' });
    const submit = h('button', { type: 'submit', id: 'checkin-save', class: 'secondary', text: 'Check in' });
    const help = !link ? 'Progress is entered by hand.'
      : link.state === 'paused' ? 'The link is paused, so the value stays until it is resumed.'
        : 'The next sync replaces it; pause the link to keep it.';
    const form = h('form', { class: 'inline-form', id: 'checkin-form' },
      field(`New value (${kr.unit === 'currency' ? kr.currency : kr.unit})`, value, help), submit);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      act(submit, async () => {
        const saved = await api.post(url`/api/v1/${kind.path}/${id}/check-in`, { value: value.valueAsNumber });
        return `Checked in: the value is now ${formatValue(saved.current_value, saved.unit, saved.currency)}.`;
      }, 'checkin-value');
    });
    return form;
  }

  function render(details, history) {
    const kr = details[kind.key];
    const link = details.link;
    const org = screen.orgByName(details.organization);
    if (org) screen.setOrg(org.id);
    screen.title(kr.title);

    const button = (buttonId, text, onclick, className) =>
      h('button', { type: 'button', id: buttonId, text, class: className, onclick: (e) => onclick(e.currentTarget) });

    const summary = h('section', { class: 'card', 'aria-labelledby': 'summary-heading' },
      h('h2', { id: 'summary-heading', text: 'Progress' }),
      facts([
        ['Owner', kr.owner],
        ['Value', h('span', { id: 'details-value', text: formatValue(kr.current_value, kr.unit, kr.currency) })],
        ['Progress', progressView(kr, 'details-progress')],
        ['Range', `${formatValue(kr.start, kr.unit, kr.currency)} → ${formatValue(kr.target, kr.unit, kr.currency)} (${kr.direction === 'decrease' ? 'lower is better' : 'higher is better'})`],
        ['Last changed', formatDate(kr.current_at)],
      ]),
      checkInForm(kr, link),
      h('div', { class: 'actions' },
        button('edit-kr', 'Edit', () => screen.go(`#/${kind.path}/${id}/edit`), 'secondary')));

    let linkSection;
    if (!link) {
      linkSection = h('section', { class: 'card', 'aria-labelledby': 'link-heading' },
        h('h2', { id: 'link-heading' }, d365Icon(), 'Dynamics 365'),
        h('p', { text: 'Not linked: progress is entered by hand. Link it to a Dynamics 365 metric to have it updated automatically.' }),
        h('div', { class: 'actions' },
          button('link-kr', 'Link to a metric', () => screen.go(`#/${kind.path}/${id}/link`))));
    } else {
      const lastSuccess = history.runs.find((run) => run.status === 'success') || null;
      const paused = link.state === 'paused' || link.state === 'broken';
      const pauseButton = paused
        ? button('resume-link', link.state === 'broken' ? 'Resume (check again)' : 'Resume', (b) => act(b, async () => {
          const result = await api.post(url`/api/v1/${kind.path}/${id}/link/resume`);
          return result.run && result.run.status !== 'success'
            ? `Resumed, but the check failed. ${failureWords(result.run.error_kind)}` : 'Resumed.';
        }, 'pause-link'), 'secondary')
        : button('pause-link', 'Pause', (b) => act(b, async () => {
          await api.post(url`/api/v1/${kind.path}/${id}/link/pause`);
          return 'Paused: scheduled syncs wait until you resume.';
        }, 'resume-link'), 'secondary');
      const unlinkButton = button('unlink', 'Unlink', (b) => confirmInline(b, {
        id: 'unlink',
        message: `Unlink this ${kind.noun}? Its value stays, but syncs stop.`,
        confirmLabel: 'Unlink',
        onConfirm: () => act(b, async () => {
          await api.delete(url`/api/v1/${kind.path}/${id}/link`);
          return 'Unlinked: the value stays, syncs stopped.';
        }, 'link-kr'),
      }), 'danger');
      unlinkButton.setAttribute('aria-expanded', 'false');

      linkSection = h('section', { class: 'card', 'aria-labelledby': 'link-heading' },
        h('h2', { id: 'link-heading' }, d365Icon(), 'Dynamics 365'),
        badges({ ...link, stale: details.stale }),
        facts([
          ['Connection', `${link.connection ?? 'unknown'} (${connectionStatusName(link.connection_status)})`],
          ['App', link.app_name],
          ['Entity', `${link.entity_name} (${link.entity_logical_name})`],
          ['View', link.view_kind === 'personal' ? `${link.view_name} (personal view)` : link.view_name],
          link.chart ? ['Chart', chartWords(link.chart)] : null,
          ['Column', link.column_name],
          ['Aggregation', aggregationName(link.aggregation)],
          ['Measured value', h('span', { id: 'details-measured', text: measuredWords(link, lastSuccess) })],
          ['State', h('span', { id: 'details-state', text: stateWords(link, kind) })],
          ['Last success', formatDate(link.last_success_at)],
          ['Last attempt', lastAttempt(details.last_run)],
          ['Next sync', h('span', { id: 'details-next-sync', text: nextSyncWords(link) })],
          details.stale ? ['Stale', 'Yes: no successful sync for more than two intervals.'] : null,
        ], { id: 'details-link' }),
        h('div', { class: 'actions' },
          button('sync-now', 'Sync now', syncNow),
          button('link-kr', 'Change metric', () => screen.go(`#/${kind.path}/${id}/link`), 'secondary'),
          pauseButton,
          unlinkButton));
    }

    const filled = history.runs.filter((run) => run.backfilled).length;
    const historySection = h('section', { class: 'card', 'aria-labelledby': 'history-heading' },
      h('h2', { id: 'history-heading', text: 'Value history' }),
      valueChart(history.runs, (value) => formatValue(value, kr.unit, kr.currency)),
      filled ? h('p', {
        class: 'muted small',
        id: 'history-backfilled',
        text: `${filled} earlier point${filled === 1 ? ' was' : 's were'} back-filled when it was linked: today’s rows counted by their creation date, so rows deleted or edited since are not seen.`,
      }) : null);

    const back = org
      ? h('p', { class: 'back' }, h('a', { href: `#/orgs/${org.id}/${kind.path}`, text: `← ${kind.plural} of ${org.name}` }))
      : null;
    body.replaceChildren(...[back, summary, linkSection, historySection].filter(Boolean));
  }

  load();
}

// A chart's measure as linked, and the one category counted if any.
function chartWords(chart) {
  const kind = chart.kind === 'personal' ? ' (personal chart)' : '';
  const category = chart.category ? `, only ${chart.category}` : '';
  return `${chart.name}${kind}: measure ${chart.measure}${category}`;
}
