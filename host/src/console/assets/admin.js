// Admin: the integration switches, the organization's connections (test,
// remove, sign in again, add) and its open alerts. Only admins see it; the
// server enforces the same roles on every request.

import { api, url } from './api.js';
import { confirmInline, errorBox, field, h, showError, statusBox } from './dom.js';
import { connectionStatusName, formatDate, isAdmin, isTenantAdmin } from './format.js';

const SIGN_IN_KINDS = {
  secret: 'an application (client secret)',
  device: 'a person (sign-in code)',
  'api-key': 'an API key',
  certificate: 'an application (certificate)',
};

// Only http(s) addresses become links: a server-given javascript: URL must not.
function safeLink(address) {
  try {
    const parsed = new URL(address);
    if (parsed.protocol === 'https:' || parsed.protocol === 'http:') {
      return h('a', { href: parsed.href, target: '_blank', rel: 'noopener noreferrer', text: address });
    }
  } catch {
    // not an address: shown as text below
  }
  return h('span', { text: address });
}

function section(id, title, ...children) {
  return h('section', { class: 'card', 'aria-labelledby': `${id}-heading`, id },
    h('h2', { id: `${id}-heading`, text: title, tabindex: '-1' }), ...children);
}

export async function showAdmin(screen) {
  const orgId = Number(screen.params[0]);
  const role = screen.session.role;
  const known = screen.orgById(orgId);
  screen.heading(known ? `Admin: ${known.name}` : 'Admin');
  if (!isAdmin(role)) {
    screen.root.append(h('p', {
      class: 'alert', role: 'alert', id: 'not-allowed',
      text: 'You are not allowed to open the admin page: it needs an organization admin’s token or wider.',
    }));
    return;
  }

  const error = errorBox('admin-error');
  const switches = section('integration', 'Integration', h('p', { class: 'muted', text: 'Loading…' }));
  const connectionStatus = statusBox('connections-status');
  const connectionList = h('ul', { class: 'connections', id: 'connection-list' });
  const connections = section('connections', 'Connections', connectionStatus, connectionList);
  const alerts = section('alerts', 'Open alerts', h('p', { class: 'muted', text: 'Loading…' }));
  const addSlot = h('div', { id: 'add-connection-slot' });
  screen.root.append(error, switches, connections, addSlot, alerts);

  const timers = new Set(); // sign-in polls to stop when leaving
  screen.onLeave(() => timers.forEach((t) => clearTimeout(t)));

  // --- the switches -------------------------------------------------------

  function renderSwitches(org) {
    const status = h('p', { id: 'integration-status', role: 'status' });
    const describeState = (o) => {
      status.textContent = o.syncs_run
        ? `Syncs run in ${o.name}.`
        : `Syncs in ${o.name} are stopped: ${o.disabled_reason}.`;
    };
    const refresh = async () => describeState(await api.get(url`/api/v1/organizations/${orgId}`));

    const control = (id, label, checked, help, put) => {
      const input = h('input', { id, type: 'checkbox', role: 'switch', checked });
      input.addEventListener('change', async () => {
        input.disabled = true;
        showError(error, null);
        try {
          await put(input.checked);
          await refresh();
        } catch (failure) {
          input.checked = !input.checked;
          showError(error, failure);
        } finally {
          input.disabled = false;
          input.focus();
        }
      });
      return h('div', { class: 'switch' }, field(label, input, help));
    };

    const parts = [];
    if (isTenantAdmin(role)) {
      parts.push(control('tenant-integration', `Dynamics 365 integration for the tenant ${org.tenant}`,
        org.tenant_integration_enabled,
        `Turning it off: syncs of every Key Result in every organization of ${org.tenant} stop until it is switched on again.`,
        (enabled) => api.put(url`/api/v1/tenants/${org.tenant_id}/integration`, { enabled })));
    }
    parts.push(control('org-integration', `Dynamics 365 integration for ${org.name}`,
      org.integration_enabled,
      `Turning it off: syncs of every Key Result in ${org.name} stop until it is switched on again.`,
      (enabled) => api.put(url`/api/v1/organizations/${orgId}/integration`, { enabled })));
    describeState(org);
    switches.replaceChildren(switches.firstChild, ...parts, status);
  }

  // --- connections ----------------------------------------------------------

  // After a change to a connection: its list and the alerts it may have
  // opened or closed (a sign-in closes "needs sign-in").
  async function loadConnections() {
    try {
      const [list, open] = await Promise.all([
        api.get(url`/api/v1/organizations/${orgId}/connections`),
        api.get(url`/api/v1/organizations/${orgId}/alerts`),
      ]);
      if (!screen.alive()) return;
      renderConnections(list);
      renderAlerts(open);
    } catch (failure) {
      if (screen.alive()) showError(error, failure);
    }
  }

  function renderConnections(list) {
    if (!screen.alive()) return;
    if (list.length === 0) {
      connectionList.replaceChildren(h('li', { class: 'muted', text: 'No connections yet: add one below.' }));
      return;
    }
    connectionList.replaceChildren(...list.map(connectionItem));
  }

  function connectionItem(conn) {
    const base = `conn-${conn.id}`;
    const result = h('div', { class: 'result', id: `${base}-result`, role: 'status' });
    const button = (suffix, text, onclick, className) =>
      h('button', { type: 'button', id: `${base}-${suffix}`, class: className, text, onclick: (e) => onclick(e.currentTarget) });

    const test = button('test', 'Test', async (b) => {
      b.disabled = true;
      showError(error, null);
      result.textContent = 'Signing in…';
      try {
        const answer = await api.post(url`/api/v1/connections/${conn.id}/test`);
        const extra = (answer.details || []).map((d) => `${d.label}: ${d.value}`).join('; ');
        result.textContent = `Works: signed in as user ${answer.user_id}${extra ? ` (${extra})` : ''}.`;
      } catch (failure) {
        result.textContent = '';
        showError(error, failure);
      } finally {
        b.disabled = false;
      }
    }, 'secondary');

    const remove = button('remove', 'Remove', (b) => confirmInline(b, {
      id: `${base}-remove`,
      message: `Remove the connection ${conn.name}? Key Results still linked to it must be unlinked first.`,
      confirmLabel: 'Remove',
      onConfirm: async () => {
        showError(error, null);
        try {
          await api.delete(url`/api/v1/connections/${conn.id}`);
          // Said once the list no longer shows it.
          await loadConnections();
          connectionStatus.textContent = `Removed ${conn.name}.`;
          // The removed row took the focus with it: start again at the list.
          document.getElementById('connections-heading')?.focus();
        } catch (failure) {
          showError(error, failure);
          b.focus();
        }
      },
    }), 'danger');

    let signIn = null;
    if (conn.status === 'needs-sign-in') {
      signIn = conn.sign_in === 'device'
        ? button('sign-in', 'Sign in', (b) => deviceSignIn(conn, b, result))
        : secretSignIn(conn, base, result);
    }

    // An admin stops every sync through a connection, saying why, and lets it
    // sync again.
    let switchOff;
    if (conn.status === 'disabled') {
      switchOff = button('enable', 'Enable', async (b) => {
        b.disabled = true;
        showError(error, null);
        try {
          await api.post(url`/api/v1/connections/${conn.id}/enable`);
          connectionStatus.textContent = `${conn.name} is enabled; its Key Results sync at once.`;
          await loadConnections();
        } catch (failure) {
          showError(error, failure);
          b.disabled = false;
        }
      }, 'secondary');
    } else {
      const reason = h('input', { id: `${base}-reason`, type: 'text', maxlength: 200, autocomplete: 'off' });
      const submit = h('button', { type: 'submit', id: `${base}-disable`, class: 'secondary', text: 'Disable' });
      switchOff = h('form', { class: 'inline-form' }, field('Reason (optional)', reason), submit);
      switchOff.addEventListener('submit', async (event) => {
        event.preventDefault();
        submit.disabled = true;
        showError(error, null);
        try {
          await api.post(url`/api/v1/connections/${conn.id}/disable`, { reason: reason.value.trim() || null });
          connectionStatus.textContent = `${conn.name} is disabled: its Key Results stop syncing and say why.`;
          await loadConnections();
        } catch (failure) {
          showError(error, failure);
          submit.disabled = false;
        }
      });
    }

    return h('li', { class: 'connection', 'data-connection-id': conn.id },
      h('div', { class: 'connection-head' },
        h('strong', { text: conn.name }),
        h('span', { class: `badge badge-conn-${conn.status}`, text: connectionStatusName(conn.status) })),
      h('p', { class: 'muted small' }, conn.url || '', conn.url ? ' · ' : '',
        `signs in as ${SIGN_IN_KINDS[conn.sign_in] || conn.sign_in}`),
      conn.status_reason ? h('p', { class: 'small', text: conn.status_reason }) : null,
      h('div', { class: 'actions' }, test, signIn, remove),
      switchOff,
      result);
  }

  // A person's sign-in: show the code and address, then ask every
  // interval_seconds whether the person has finished.
  async function deviceSignIn(conn, button, result) {
    button.disabled = true;
    showError(error, null);
    let started;
    try {
      started = await api.post(url`/api/v1/connections/${conn.id}/sign-in`, {});
    } catch (failure) {
      showError(error, failure);
      button.disabled = false;
      return;
    }
    const waiting = h('p', { id: `conn-${conn.id}-waiting`, text: 'Waiting for the person to sign in…' });
    result.replaceChildren(
      h('p', {}, 'Ask the person to open ', safeLink(started.verification_uri),
        ' and enter the code ', h('strong', { class: 'code', id: `conn-${conn.id}-code`, text: started.user_code }), '.'),
      waiting);
    const deadline = Date.now() + (started.expires_in_seconds || 900) * 1000;
    const every = Math.max(1, started.interval_seconds || 5) * 1000;
    const poll = async () => {
      if (!screen.alive()) return;
      if (Date.now() > deadline) {
        waiting.textContent = 'The code expired. Start the sign-in again.';
        button.disabled = false;
        return;
      }
      try {
        const answer = await api.get(url`/api/v1/connections/${conn.id}/sign-in`);
        if (!screen.alive()) return;
        if (answer.status === 'complete') {
          connectionStatus.textContent = `${conn.name} is signed in as ${answer.user_id}; its Key Results sync again.`;
          await loadConnections();
          return;
        }
      } catch (failure) {
        if (!screen.alive()) return;
        waiting.textContent = '';
        showError(error, failure);
        button.disabled = false;
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        poll();
      }, every);
      timers.add(timer);
    };
    const first = setTimeout(() => {
      timers.delete(first);
      poll();
    }, every);
    timers.add(first);
  }

  // An application's sign-in again: a new client secret, tried before it
  // replaces the old one.
  function secretSignIn(conn, base, result) {
    const secret = h('input', { id: `${base}-secret`, type: 'password', autocomplete: 'new-password', required: true });
    const submit = h('button', { type: 'submit', id: `${base}-sign-in`, text: 'Sign in with a new secret' });
    const form = h('form', { class: 'inline-form' }, field('New client secret', secret), submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      showError(error, null);
      try {
        await api.post(url`/api/v1/connections/${conn.id}/sign-in`, { secret: { client_secret: secret.value } });
        secret.value = '';
        connectionStatus.textContent = `${conn.name} signed in with the new secret; its Key Results sync again.`;
        await loadConnections();
      } catch (failure) {
        secret.value = '';
        result.textContent = '';
        showError(error, failure);
        submit.disabled = false;
      }
    });
    return form;
  }

  // --- adding a connection -------------------------------------------------

  // The form follows what the integration declares: one field per setting
  // (an endpoint is a URL), and a secret only if it signs in with one.
  function addConnectionForm(integration) {
    const input = (id, type, props = {}) => h('input', { id, name: id, type, autocomplete: 'off', ...props });
    const name = input('conn-name', 'text', { required: true, maxlength: 100 });
    const settings = integration.settings.map((setting) => ({
      setting,
      control: input(`conn-setting-${setting.key}`, setting.kind === 'endpoint' ? 'url' : 'text', {
        required: setting.required,
        placeholder: setting.default || '',
      }),
    }));
    const takesSecret = integration.credentials.includes('client-secret');
    const secret = takesSecret ? input('conn-client-secret', 'password', { autocomplete: 'new-password' }) : null;
    const loopback = input('conn-allow-loopback', 'checkbox');
    const add = h('button', { type: 'submit', id: 'conn-add', text: 'Add connection' });
    const status = statusBox('conn-add-status');
    const form = h('form', { id: 'conn-form', class: 'stacked' },
      field('Name', name, 'Unique in this organization.'),
      settings.map(({ setting, control }) =>
        field(setting.required ? setting.label : `${setting.label} (optional)`, control, setting.help)),
      secret ? field('Client secret', secret,
        'Leave it empty when a person signs in with a code instead; then use “Sign in” in the list.') : null,
      h('div', { class: 'choice' }, loopback,
        h('label', { for: 'conn-allow-loopback', text: 'Allow plain HTTP and loopback addresses (simulators and tests only)' })),
      h('div', { class: 'actions' }, add),
      status);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      add.disabled = true;
      showError(error, null);
      status.textContent = secret && secret.value ? 'Signing in to check the credentials…' : '';
      const values = {};
      for (const { setting, control } of settings) {
        if (control.value.trim()) values[setting.key] = control.value.trim();
      }
      const body = { name: name.value.trim(), integration: integration.id, settings: values };
      if (secret && secret.value) body.secret = { client_secret: secret.value };
      if (loopback.checked) body.allow_loopback = true;
      try {
        const added = await api.post(url`/api/v1/organizations/${orgId}/connections`, body);
        form.reset();
        status.textContent = added.verified_as
          ? `Added ${added.name}: signed in as user ${added.verified_as.user_id}.`
          : `Added ${added.name}. It needs a person’s sign-in: use “Sign in” in the list above.`;
        await loadConnections();
      } catch (failure) {
        // The secret is never left in the page after a failed try either.
        if (secret) secret.value = '';
        status.textContent = '';
        showError(error, failure);
      } finally {
        add.disabled = false;
      }
    });
    return section('add-connection', `Add a ${integration.name} connection`, form);
  }

  // --- alerts -------------------------------------------------------------

  // What to do about an alert, in the console: sign the connection in again
  // (its control in the list above), or open the Key Result.
  function alertFix(alert) {
    const colon = alert.subject.indexOf(':');
    const kind = alert.subject.slice(0, colon);
    const subjectId = alert.subject.slice(colon + 1);
    if (kind === 'connection') {
      return h('button', {
        type: 'button', class: 'secondary small', id: `alert-${alert.id}-fix`, text: 'Sign in again',
        onclick: () => {
          // A new secret's field, or a person's Sign in button.
          const control = document.getElementById(`conn-${subjectId}-secret`)
            || document.getElementById(`conn-${subjectId}-sign-in`);
          if (control) {
            control.scrollIntoView({ block: 'center' });
            control.focus();
          }
        },
      });
    }
    if (kind === 'kr') {
      const text = alert.kind === 'broken-link'
        ? 'Open the Key Result to change its metric or resume it'
        : 'Open the Key Result to see why it does not sync';
      return h('a', { href: `#/key-results/${subjectId}`, id: `alert-${alert.id}-fix`, text });
    }
    return null;
  }

  function renderAlerts(list) {
    const items = list.length === 0
      ? [h('p', { class: 'muted', text: 'No open alerts.' })]
      : [h('ul', { class: 'alerts', id: 'alert-list' }, list.map((alert) => h('li', { 'data-alert-id': alert.id },
        h('span', { class: `badge badge-${alert.kind}`, text: alert.kind.replace(/-/g, ' ') }), ' ',
        h('span', { text: alert.message }), ' ',
        h('span', { class: 'muted small', text: `since ${formatDate(alert.opened_at)}` }), ' ',
        alertFix(alert))))];
    alerts.replaceChildren(alerts.firstChild, ...items);
  }

  // --- loading --------------------------------------------------------------

  let org;
  let connectionsList;
  let alertList;
  let integrations;
  try {
    [org, connectionsList, alertList, integrations] = await Promise.all([
      api.get(url`/api/v1/organizations/${orgId}`),
      api.get(url`/api/v1/organizations/${orgId}/connections`),
      api.get(url`/api/v1/organizations/${orgId}/alerts`),
      api.get('/api/v1/integrations'),
    ]);
  } catch (failure) {
    if (screen.alive()) showError(error, failure);
    return;
  }
  if (!screen.alive()) return;
  screen.title(`Admin: ${org.name}`);
  renderSwitches(org);
  renderConnections(connectionsList);
  if (integrations.length > 0) addSlot.replaceChildren(addConnectionForm(integrations[0]));
  renderAlerts(alertList);
}
