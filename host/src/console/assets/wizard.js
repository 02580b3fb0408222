// The link wizard: Connection → App → Entity → View → Column → Aggregation →
// Preview and save. Each step makes one request (the column step two: the
// view's columns and the table's charts, whose measures are offered beside the
// columns; the aggregation step none: the column lists what it allows); lists
// already loaded are kept, so Back asks for nothing again.

import { api, url } from './api.js';
import { errorBox, facts, field, h, showError } from './dom.js';
import { aggregationName, connectionStatusName, formatMeasured, formatNumber, failureWords, formatValue } from './format.js';

const STEPS = ['connection', 'app', 'entity', 'view', 'column', 'aggregation', 'preview'];
const TITLES = {
  connection: 'Connection',
  app: 'App',
  entity: 'Entity',
  view: 'View',
  column: 'Column',
  aggregation: 'Aggregation',
  preview: 'Preview and save',
};
const SEARCH_DELAY_MS = 250;

export async function showWizard(screen) {
  const krId = Number(screen.params[0]);
  const kind = screen.kind;
  screen.heading('Link to a Dynamics 365 metric');
  const error = errorBox('wizard-error');
  const stepList = h('ol', { class: 'steps', id: 'wizard-steps', 'aria-label': 'Steps' });
  const panel = h('div', { class: 'card wizard-panel', id: 'wizard-panel' }, h('p', { class: 'muted', text: 'Loading…' }));
  screen.root.append(stepList, error, panel);

  let details;
  try {
    details = await api.get(url`/api/v1/${kind.path}/${krId}`);
  } catch (failure) {
    if (screen.alive()) showError(error, failure);
    return;
  }
  if (!screen.alive()) return;
  const kr = details[kind.key];
  const org = screen.orgByName(details.organization);
  if (!org) {
    showError(error, `This ${kind.noun}’s organization is not among the organizations of your session.`);
    return;
  }
  screen.setOrg(org.id);
  screen.title(`Link “${kr.title}” to a Dynamics 365 metric`);

  // step → the item picked there; periodColumn: the date column the period
  // applies to, the current link's to begin with
  const chosen = {
    periodColumn: details.link?.period_column || null,
    category: details.link?.chart?.category || '',
  };
  const lists = {}; // step → { key, items }: the last list loaded
  let viewSearch = '';
  let index = 0;
  let stepToken = 0; // bumps on every step change; late answers of a left step are dropped
  let leaveStep = [];

  const current = (token) => screen.alive() && token === stepToken;
  screen.onLeave(() => leaveStep.forEach((fn) => fn()));

  async function loadList(step, key, fetchList, signal) {
    if (lists[step] && lists[step].key === key) return lists[step].items;
    const items = await fetchList(signal);
    lists[step] = { key, items };
    return items;
  }

  function renderSteps() {
    stepList.replaceChildren(...STEPS.map((step, i) => h('li', {
      class: i < index ? 'done' : i === index ? 'current' : null,
      'aria-current': i === index ? 'step' : null,
      text: TITLES[step],
    })));
  }

  // A step's form: its content, Back (Cancel on the first step) and Next.
  function stepForm(content, { onNext, nextId = 'wizard-next', nextLabel = 'Next', nextDisabled = false }) {
    const back = index > 0
      ? h('button', { type: 'button', id: 'wizard-back', class: 'secondary', text: 'Back', onclick: () => show(index - 1, true) })
      : h('a', { href: `#/${kind.path}/${krId}`, id: 'wizard-cancel', class: 'button secondary', text: 'Cancel' });
    const next = h('button', { type: 'submit', id: nextId, text: nextLabel, disabled: nextDisabled });
    const form = h('form', { class: 'wizard-step', id: `wizard-step-${STEPS[index]}` },
      h('h2', { text: `Step ${index + 1} of ${STEPS.length}: ${TITLES[STEPS[index]]}` }),
      content,
      h('div', { class: 'actions' }, back, next));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      onNext(next);
    });
    return { form, next };
  }

  function loadingPanel() {
    panel.replaceChildren(h('h2', { text: `Step ${index + 1} of ${STEPS.length}: ${TITLES[STEPS[index]]}` }),
      h('p', { class: 'muted', role: 'status', text: 'Loading…' }));
  }

  function failedPanel(failure, retry) {
    showError(error, failure);
    const { form } = stepForm(h('p', { text: 'This step could not load.' }), { onNext: retry, nextLabel: 'Try again' });
    panel.replaceChildren(form);
  }

  // A step that picks one item of a list from one request.
  async function choiceStep({ step, key, fetchList, label, value, text, emptyText, help, moved }) {
    const token = stepToken;
    loadingPanel();
    let items;
    try {
      items = await loadList(step, key, fetchList);
    } catch (failure) {
      if (current(token)) failedPanel(failure, () => show(index, true));
      return;
    }
    if (!current(token)) return;
    const before = chosen[step] ? value(chosen[step]) : null;
    const control = h('select', { id: `wizard-${step}`, name: step, required: true },
      items.map((item) => h('option', { value: value(item), text: text(item), selected: value(item) === before })));
    const content = items.length === 0
      ? h('p', { id: `wizard-${step}-empty`, text: emptyText })
      : field(label, control, help);
    const { form } = stepForm(content, {
      nextDisabled: items.length === 0,
      onNext: () => {
        chosen[step] = items.find((item) => value(item) === control.value);
        show(index + 1, true);
      },
    });
    panel.replaceChildren(form);
    if (moved && items.length) control.focus();
  }

  // The view step: a search box that asks the server as people type.
  function viewStep(moved) {
    const token = stepToken;
    const connection = chosen.connection;
    const entity = chosen.entity;
    const search = h('input', { id: 'wizard-view-search', name: 'view-search', type: 'search', value: viewSearch, autocomplete: 'off' });
    const list = h('select', { id: 'wizard-view', name: 'view', size: 8, required: true });
    const count = h('p', { id: 'wizard-view-count', class: 'muted small', role: 'status' });
    let items = [];
    let timer = null;
    let controller = null;
    leaveStep.push(() => {
      clearTimeout(timer);
      controller?.abort();
    });

    const { form, next } = stepForm([
      field('Search views by name', search, 'The list follows as you type.'),
      field('View', list),
      count,
    ], {
      nextDisabled: true,
      onNext: () => {
        const picked = items.find((view) => view.id === list.value);
        if (!picked) {
          showError(error, 'Pick a view first.');
          list.focus();
          return;
        }
        chosen.view = picked;
        show(index + 1, true);
      },
    });

    function fill(views) {
      items = views;
      const before = chosen.view?.id;
      const pick = views.find((v) => v.id === before) || views.find((v) => v.is_default) || views[0];
      list.replaceChildren(...views.map((v) => h('option', {
        value: v.id,
        selected: v === pick,
        text: v.kind === 'personal' ? `${v.name} (personal view)` : v.name,
      })));
      count.textContent = views.length === 1 ? '1 view' : `${views.length} views`;
      next.disabled = views.length === 0;
    }

    async function run(text) {
      controller?.abort();
      controller = new AbortController();
      count.textContent = 'Searching…';
      const path = text
        ? url`/api/v1/connections/${connection.id}/entities/${entity.logical_name}/views?search=${text}`
        : url`/api/v1/connections/${connection.id}/entities/${entity.logical_name}/views`;
      try {
        const views = await loadList('view', `${connection.id}/${entity.logical_name}/${text}`,
          (signal) => api.get(path, { signal }), controller.signal);
        if (!current(token)) return;
        viewSearch = text;
        showError(error, null);
        fill(views);
      } catch (failure) {
        if (failure.name === 'AbortError' || !current(token)) return;
        count.textContent = '';
        showError(error, failure);
      }
    }

    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => run(search.value.trim()), SEARCH_DELAY_MS);
    });
    // Enter searches at once instead of moving on with the old list.
    search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        clearTimeout(timer);
        run(search.value.trim());
      }
    });
    panel.replaceChildren(form);
    if (moved) search.focus();
    run(viewSearch);
  }

  function metricBody() {
    const where = {
      entity: chosen.entity.logical_name,
      view_id: chosen.view.id,
      view_kind: chosen.view.kind,
    };
    const chart = chosen.column.chart;
    if (!chart) return { ...where, column: chosen.column.logical_name, aggregation: chosen.aggregation };
    return {
      ...where,
      chart: chart.id,
      chart_measure: chart.measure,
      chart_category: chart.category && chosen.category ? chosen.category : null,
    };
  }

  // A chart's measures, offered as columns: each its own aggregation only.
  function chartMeasures(charts) {
    return charts.flatMap((chart) => chart.measures.map((measure) => ({
      logical_name: measure.column,
      name: `${chart.name}: ${aggregationName(measure.aggregation)} of ${measure.column}`,
      type: 'chart',
      aggregations: [measure.aggregation],
      chart: { id: chart.id, name: chart.name, measure: measure.alias, category: chart.category },
    })));
  }

  // A chart with categories may count one category's rows only.
  function categoryChoice(onChange) {
    const category = chosen.column.chart?.category;
    if (!category) return null;
    const grouping = category.date_grouping;
    const example = grouping === 'month' ? '2024-03' : grouping === 'quarter' ? '2024-Q1'
      : grouping === 'year' ? '2024' : grouping === 'day' ? '2024-03-15' : 'Won';
    const control = h('input', { id: 'wizard-chart-category', name: 'chart-category', type: 'text', value: chosen.category, placeholder: example });
    control.addEventListener('input', () => {
      chosen.category = control.value.trim();
      onChange();
    });
    return field(`Only one category of ${category.column}${grouping ? ` by ${grouping}` : ''}`, control,
      `Leave it empty to count every row of the view; e.g. ${example}.`);
  }

  // The preview's body: the metric, within the period when one applies.
  function previewBody() {
    if (!chosen.periodColumn) return metricBody();
    return {
      ...metricBody(),
      period: { column: chosen.periodColumn, first_day: kr.period_start, last_day: kr.period_end },
    };
  }

  // With a period, the view's own date columns (not a joined table's) can
  // limit the metric to the rows dated within it.
  function periodChoice(onChange) {
    const dates = (lists.column?.items || [])
      .filter((column) => column.type === 'date-time' && !column.logical_name.includes('.'));
    // The current link's column may not be one of this view's.
    if (!dates.some((column) => column.logical_name === chosen.periodColumn)) chosen.periodColumn = null;
    if (!kr.period_start && !kr.period_end) return null;
    const span = `${kr.period_start || '…'} → ${kr.period_end || '…'}`;
    const control = h('select', { id: 'wizard-period-column', name: 'period-column' },
      h('option', { value: '', text: 'Every row of the view', selected: !chosen.periodColumn }),
      dates.map((column) => h('option', {
        value: column.logical_name,
        text: `Rows whose ${column.name} is within it`,
        selected: column.logical_name === chosen.periodColumn,
      })));
    control.addEventListener('change', () => {
      chosen.periodColumn = control.value || null;
      onChange();
    });
    return field(`The ${kind.noun}’s period (${span})`, control,
      dates.length ? 'Only rows dated within the period count, both days included.' : 'The view has no date column of its own.');
  }

  function previewStep(moved) {
    const token = stepToken;
    const c = chosen;
    const output = h('output', { id: 'wizard-preview-value', class: 'preview-value', 'aria-live': 'polite' });
    const note = h('p', { class: 'help', id: 'wizard-preview-note' });
    const previewButton = h('button', { type: 'button', id: 'wizard-preview', class: 'secondary', text: 'Preview the value' });
    // Another period column or category asks for another preview before saving.
    const changed = () => {
      output.textContent = '';
      save.disabled = true;
    };
    const period = periodChoice(changed);
    const category = categoryChoice(changed);
    const { form, next: save } = stepForm([
      facts([
        ['Connection', c.connection.name],
        ['App', c.app.name],
        ['Entity', c.entity.name],
        ['View', c.view.name],
        c.column.chart ? ['Chart', `${c.column.chart.name} (measure ${c.column.chart.measure})`] : null,
        ['Column', c.column.chart ? c.column.logical_name : `${c.column.name} (${c.column.type})`],
        ['Aggregation', aggregationName(c.aggregation)],
      ]),
      period,
      category,
      h('div', { class: 'actions' }, previewButton),
      output,
      note,
    ], {
      nextId: 'wizard-save',
      nextLabel: 'Save link',
      nextDisabled: true,
      onNext: async (button) => {
        button.disabled = true;
        showError(error, null);
        try {
          const result = await api.put(url`/api/v1/${kind.path}/${krId}/link`, {
            connection_id: c.connection.id,
            app_id: c.app.id,
            ...metricBody(),
            period_column: c.periodColumn || null,
          });
          const saved = result[kind.key];
          const message = result.run && result.run.status !== 'success'
            ? `Linked, but the first sync failed. ${failureWords(result.run.error_kind)}`
            : `Linked. The value is now ${formatValue(saved.current_value, saved.unit, saved.currency)}.`;
          screen.go(`#/${kind.path}/${krId}`, message);
        } catch (failure) {
          if (!current(token)) return;
          showError(error, failure);
          button.disabled = false;
        }
      },
    });

    previewButton.addEventListener('click', async () => {
      previewButton.disabled = true;
      showError(error, null);
      output.textContent = 'Measuring…';
      note.textContent = '';
      try {
        const m = await api.post(url`/api/v1/connections/${c.connection.id}/measurements`, previewBody());
        if (!current(token)) return;
        output.textContent = `Value ${formatMeasured(m.value, m.value_type, m.currency)}; currency ${m.currency || 'none (not an amount of money)'}; ${formatNumber(m.records)} record${m.records === 1 ? '' : 's'}.`;
        if (kr.unit === 'currency' && m.currency && kr.currency && m.currency.toUpperCase() !== kr.currency.toUpperCase()) {
          note.textContent = `This ${kind.noun} counts in ${kr.currency}, but the metric is in ${m.currency}, so saving will be refused.`;
        }
        save.disabled = false;
      } catch (failure) {
        if (!current(token)) return;
        output.textContent = '';
        showError(error, failure);
      } finally {
        previewButton.disabled = false;
      }
    });
    panel.replaceChildren(form);
    if (moved) previewButton.focus();
  }

  function show(i, moved = false) {
    leaveStep.forEach((fn) => fn());
    leaveStep = [];
    stepToken += 1;
    index = i;
    showError(error, null);
    renderSteps();
    const c = chosen;
    switch (STEPS[i]) {
      case 'connection':
        return choiceStep({
          step: 'connection',
          key: String(org.id),
          fetchList: () => api.get(url`/api/v1/organizations/${org.id}/connections`),
          label: 'Connection',
          value: (conn) => conn.id,
          text: (conn) => (conn.status === 'ok' ? conn.name : `${conn.name} (${connectionStatusName(conn.status)})`),
          emptyText: 'This organization has no connection to Dynamics 365 yet. An admin adds one on the Admin page.',
          help: 'The Dynamics 365 environment to read from.',
          moved,
        });
      case 'app':
        return choiceStep({
          step: 'app',
          key: c.connection.id,
          fetchList: () => api.get(url`/api/v1/connections/${c.connection.id}/apps`),
          label: 'App',
          value: (app) => app.id,
          text: (app) => app.name,
          emptyText: 'The environment has no active app this connection can see.',
          help: 'The model-driven app whose tables to choose from.',
          moved,
        });
      case 'entity':
        return choiceStep({
          step: 'entity',
          key: `${c.connection.id}/${c.app.id}`,
          fetchList: () => api.get(url`/api/v1/connections/${c.connection.id}/apps/${c.app.id}/entities`),
          label: 'Entity (table)',
          value: (entity) => entity.logical_name,
          text: (entity) => entity.name,
          emptyText: 'The app’s site map lists no tables.',
          moved,
        });
      case 'view':
        return viewStep(moved);
      case 'column':
        return choiceStep({
          step: 'column',
          key: `${c.connection.id}/${c.entity.logical_name}/${c.view.id}/${c.view.kind}`,
          fetchList: async () => {
            const [columns, charts] = await Promise.all([
              api.get(url`/api/v1/connections/${c.connection.id}/entities/${c.entity.logical_name}/views/${c.view.id}/columns?kind=${c.view.kind}`),
              api.get(url`/api/v1/connections/${c.connection.id}/entities/${c.entity.logical_name}/charts`),
            ]);
            return [...columns, ...chartMeasures(charts)];
          },
          label: 'Column or chart measure',
          value: (column) => (column.chart ? `chart:${column.chart.id}:${column.chart.measure}` : column.logical_name),
          text: (column) => (column.chart ? `Chart “${column.name}”` : `${column.name} (${column.type})`),
          emptyText: 'The view has no columns.',
          help: 'The type in brackets decides which aggregations the next step offers; a chart’s measure is the chart’s own aggregation over the view’s rows.',
          moved,
        });
      case 'aggregation':
        return choiceStep({
          step: 'aggregation',
          key: `${c.view.id}/${c.column.logical_name}`,
          // The column says which aggregations it allows: no request.
          fetchList: async () => c.column.aggregations,
          label: 'Aggregation',
          value: (name) => name,
          text: (name) => aggregationName(name),
          emptyText: 'This column allows no aggregation; go back and pick another.',
          moved,
        });
      default:
        return previewStep(moved);
    }
  }

  show(0);
}
