// Creating and editing a Key Result or a Project (which may name a parent Key
// Result and a due date). "Automatically from a data source" continues to
// the link wizard once it is saved.

import { api, url } from './api.js';
import { errorBox, field, h, showError } from './dom.js';

function select(id, options, chosen) {
  return h('select', { id, name: id },
    options.map(([value, text]) => h('option', { value, text, selected: value === chosen })));
}

function numberInput(id, value) {
  return h('input', { id, name: id, type: 'number', step: 'any', required: true, value, inputmode: 'decimal' });
}

// kr: the item to edit, or null to create one in orgId; parents: a Project's
// possible parent Key Results.
function renderForm(screen, { orgId, kr, linked, parents }) {
  const kind = screen.kind;
  const editing = Boolean(kr);
  const error = errorBox('kr-form-error');
  const title = h('input', { id: 'kr-title', name: 'title', type: 'text', required: true, maxlength: 200, value: kr?.title, autocomplete: 'off', 'data-autofocus': !kr });
  const owner = h('input', { id: 'kr-owner', name: 'owner', type: 'text', required: true, maxlength: 200, value: kr?.owner, autocomplete: 'off' });
  const unit = select('kr-unit', [['number', 'Number'], ['percent', 'Percent'], ['currency', 'Currency']], kr?.unit ?? 'number');
  const currency = h('input', {
    id: 'kr-currency', name: 'currency', type: 'text', maxlength: 3, pattern: '[A-Za-z]{3}',
    value: kr?.currency, autocomplete: 'off', class: 'short',
  });
  const currencyField = field('Currency code', currency, 'Three letters (ISO 4217), such as USD or EUR.');
  const start = numberInput('kr-start', kr?.start ?? 0);
  const target = numberInput('kr-target', kr?.target);
  const direction = select('kr-direction', [['increase', 'Increase (higher is better)'], ['decrease', 'Decrease (lower is better)']], kr?.direction ?? 'increase');
  if (editing) {
    // The API changes title, owner, start, target and direction only.
    unit.disabled = true;
    currency.disabled = true;
  }
  const showCurrency = () => {
    currencyField.hidden = unit.value !== 'currency';
    currency.required = unit.value === 'currency' && !editing;
  };
  unit.addEventListener('change', showCurrency);
  showCurrency();

  // The period a link may limit the metric to.
  const periodStart = h('input', { id: 'kr-period-start', name: 'period-start', type: 'date', value: kr?.period_start });
  const periodEnd = h('input', { id: 'kr-period-end', name: 'period-end', type: 'date', value: kr?.period_end });
  const periodFields = h('div', { class: 'row' },
    field('Period starts (optional)', periodStart, 'A link can count only the rows dated within the period.'),
    field('Period ends (optional)', periodEnd, 'Both days are included.'));

  // A Project's own fields: the Key Result it serves and its due date.
  let projectFields = null;
  let parent = null;
  let due = null;
  if (kind.key === 'project') {
    parent = select('kr-parent', [['', 'None'], ...parents.map((p) => [String(p.id), p.title])],
      kr?.parent_id ? String(kr.parent_id) : '');
    due = h('input', { id: 'kr-due', name: 'due', type: 'date', value: kr?.due_date });
    projectFields = h('div', { class: 'row' },
      field('Parent Key Result (optional)', parent), field('Due date (optional)', due));
  }

  const manual = h('input', { type: 'radio', id: 'kr-progress-manual', name: 'progress', value: 'manual', checked: true });
  const auto = h('input', { type: 'radio', id: 'kr-progress-auto', name: 'progress', value: 'auto' });
  const progressChoice = linked
    ? h('p', { class: 'help', text: 'Progress comes from Dynamics 365. Change the metric or unlink it on the details page.' })
    : h('fieldset', { class: 'choices' },
      h('legend', { text: 'Progress' }),
      h('div', { class: 'choice' }, manual, h('label', { for: 'kr-progress-manual', text: 'Manually' })),
      h('div', { class: 'choice' }, auto, h('label', { for: 'kr-progress-auto', text: 'Automatically from a data source (Dynamics 365)' })));

  const save = h('button', { type: 'submit', id: 'kr-save', text: editing ? 'Save' : 'Create' });
  const cancelHref = editing ? `#/${kind.path}/${kr.id}` : `#/orgs/${orgId}/${kind.path}`;
  const form = h('form', { class: 'card', id: 'kr-form' },
    field('Title', title),
    field('Owner', owner, 'Who answers for it, for example an email address.'),
    h('div', { class: 'row' }, field('Unit', unit), currencyField),
    h('div', { class: 'row' }, field('Start', start), field('Target', target)),
    field('Direction', direction),
    projectFields,
    periodFields,
    progressChoice,
    error,
    h('div', { class: 'actions' }, save, h('a', { href: cancelHref, id: 'kr-cancel', class: 'button secondary', text: 'Cancel' })));

  // The browser checks required fields and numbers before this runs.
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, null);
    save.disabled = true;
    const fields = {
      title: title.value.trim(),
      owner: owner.value.trim(),
      start: start.valueAsNumber,
      target: target.valueAsNumber,
      direction: direction.value,
    };
    if (parent && parent.value) fields.parent_id = Number(parent.value);
    if (due && due.value) fields.due_date = due.value;
    if (periodStart.value) fields.period_start = periodStart.value;
    if (periodEnd.value) fields.period_end = periodEnd.value;
    try {
      let saved;
      if (editing) {
        saved = await api.patch(url`/api/v1/${kind.path}/${kr.id}`, fields);
      } else {
        const body = { ...fields, unit: unit.value };
        if (unit.value === 'currency') body.currency = currency.value.trim().toUpperCase();
        saved = await api.post(url`/api/v1/organizations/${orgId}/${kind.path}`, body);
      }
      if (!linked && auto.checked) screen.go(`#/${kind.path}/${saved.id}/link`, `Saved “${saved.title}”. Now pick its metric.`);
      else if (editing) screen.go(`#/${kind.path}/${saved.id}`, 'Saved.');
      else screen.go(`#/orgs/${orgId}/${kind.path}`, `Created “${saved.title}”.`);
    } catch (failure) {
      if (!screen.alive()) return;
      showError(error, failure);
      save.disabled = false;
    }
  });
  screen.root.append(form);
}

// A Project's form offers the organization's Key Results as parents.
async function parentsOf(screen, orgId) {
  if (screen.kind.key !== 'project' || !orgId) return [];
  return api.get(url`/api/v1/organizations/${orgId}/key-results`);
}

export async function showNewKeyResult(screen) {
  const orgId = Number(screen.params[0]);
  const kind = screen.kind;
  const org = screen.orgById(orgId);
  screen.heading(org ? `New ${kind.noun} in ${org.name}` : `New ${kind.noun}`);
  const error = errorBox('kr-load-error');
  screen.root.append(error);
  let parents;
  try {
    parents = await parentsOf(screen, orgId);
  } catch (failure) {
    if (screen.alive()) showError(error, failure);
    return;
  }
  if (!screen.alive()) return;
  renderForm(screen, { orgId, kr: null, linked: false, parents });
}

export async function showEditKeyResult(screen) {
  const id = Number(screen.params[0]);
  const kind = screen.kind;
  screen.heading(`Edit ${kind.noun}`);
  const error = errorBox('kr-load-error');
  screen.root.append(error);
  let details;
  let parents;
  try {
    details = await api.get(url`/api/v1/${kind.path}/${id}`);
    const org = screen.orgByName(details.organization);
    parents = await parentsOf(screen, org?.id);
  } catch (failure) {
    if (screen.alive()) showError(error, failure);
    return;
  }
  if (!screen.alive()) return;
  const item = details[kind.key];
  const org = screen.orgByName(details.organization);
  if (org) screen.setOrg(org.id);
  screen.title(`Edit “${item.title}”`);
  renderForm(screen, { orgId: org?.id, kr: item, linked: Boolean(details.link), parents });
}
