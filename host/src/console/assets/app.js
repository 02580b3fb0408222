// The console's shell: the session, the header and the hash router. Each
// screen lives in its own module and gets a `screen` object (see makeScreen)
// with what it needs; it renders into <main> and registers what to stop
// (timers, polling) when people leave it.

import { api, describe, onSessionEnded, request } from './api.js';
import { h, showError } from './dom.js';
import { isAdmin, roleName } from './format.js';
import { showSignIn } from './signin.js';
import { showKeyResults } from './keyresults.js';
import { showDetails } from './details.js';
import { showNewKeyResult, showEditKeyResult } from './krform.js';
import { showWizard } from './wizard.js';
import { showAdmin } from './admin.js';
import { KEY_RESULT, PROJECT } from './kinds.js';

const main = document.getElementById('main');
const header = document.getElementById('site-header');
const appError = document.getElementById('app-error');
const flash = document.getElementById('flash');

const state = {
  session: null, // {role, tenant_id, tenant, organization_id, organization, user}
  orgs: [], // the organizations the session reaches
  orgId: null, // the organization being looked at
  wanted: null, // where people were going when they had to sign in first
};

// Key Results and Projects share their screens; a route names the kind.
const ROUTES = [
  { pattern: /^\/sign-in$/, show: showSignIn, open: true },
  { pattern: /^\/orgs\/(\d+)\/admin$/, show: showAdmin },
  ...[KEY_RESULT, PROJECT].flatMap((kind) => [
    { pattern: new RegExp(`^/orgs/(\\d+)/${kind.path}$`), show: showKeyResults, kind },
    { pattern: new RegExp(`^/orgs/(\\d+)/${kind.path}/new$`), show: showNewKeyResult, kind },
    { pattern: new RegExp(`^/${kind.path}/(\\d+)$`), show: showDetails, kind },
    { pattern: new RegExp(`^/${kind.path}/(\\d+)/edit$`), show: showEditKeyResult, kind },
    { pattern: new RegExp(`^/${kind.path}/(\\d+)/link$`), show: showWizard, kind },
  ]),
];

let generation = 0; // bumps on every navigation; async work of old screens checks it
let cleanups = [];
let pendingFlash = null;
// An error found before a navigation (loading the organizations at sign-in)
// shows on the screen that navigation leads to.
let pendingError = null;

function currentPath() {
  return location.hash.replace(/^#/, '') || '/';
}

// Navigates, with a message to show on the next screen.
function go(hash, message) {
  pendingFlash = message ?? null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function homeOrg() {
  return state.orgs.find((o) => o.id === state.session?.organization_id) || state.orgs[0] || null;
}

function homeHash() {
  const org = homeOrg();
  return org ? `#/orgs/${org.id}/key-results` : '#/';
}

function route() {
  const path = currentPath();
  // Redirects first: they navigate again, and that navigation renders.
  if (!state.session && path !== '/sign-in') {
    state.wanted = path === '/' ? null : location.hash;
    location.replace('#/sign-in');
    return;
  }
  if (state.session && path === '/sign-in') {
    location.replace(homeHash());
    return;
  }
  if (state.session && path === '/' && homeOrg()) {
    location.replace(homeHash());
    return;
  }

  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  generation += 1;
  appError.textContent = pendingError || '';
  pendingError = null;
  flash.textContent = pendingFlash || '';
  pendingFlash = null;
  main.replaceChildren();

  let found = null;
  let params = [];
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (match) {
      found = candidate;
      params = match.slice(1);
      break;
    }
  }
  const screen = makeScreen(generation, params, found?.kind ?? KEY_RESULT);
  const orgParam = /^\/orgs\/(\d+)/.exec(path);
  if (orgParam) state.orgId = Number(orgParam[1]);
  renderHeader();

  let result;
  try {
    if (!found) result = path === '/' ? showNoOrganization(screen) : showNotFound(screen);
    else result = found.show(screen);
  } catch (error) {
    result = Promise.reject(error);
  }
  Promise.resolve(result).catch((error) => {
    if (screen.alive()) showError(appError, error);
  });
  // The new screen's heading takes the focus, so keyboard and screen reader
  // users start at its top; a screen can name another first control.
  (main.querySelector('[data-autofocus]') || main.querySelector('h1'))?.focus();
}

function makeScreen(gen, params, kind) {
  let heading = null;
  const screen = {
    root: main,
    params,
    kind,
    session: state.session,
    orgs: state.orgs,
    alive: () => gen === generation,
    onLeave: (cleanup) => cleanups.push(cleanup),
    go,
    notify: (text) => {
      flash.textContent = text;
    },
    heading(text) {
      heading = h('h1', { tabindex: '-1', text });
      main.append(heading);
      document.title = `${text} · Goals console`;
      return heading;
    },
    title(text) {
      if (heading) heading.textContent = text;
      document.title = `${text} · Goals console`;
    },
    orgById: (id) => state.orgs.find((o) => o.id === Number(id)) || null,
    orgByName: (name) => state.orgs.find((o) => o.name === name) || null,
    // Screens reached without an organization in the URL say which one they
    // show, so the header's picker and links follow.
    setOrg(id) {
      if (id !== null && id !== undefined && state.orgId !== id) {
        state.orgId = id;
        if (gen === generation) renderHeader();
      }
    },
    signedIn,
  };
  return screen;
}

async function loadOrganizations() {
  state.orgs = await api.get('/api/v1/organizations');
}

async function signedIn(session) {
  state.session = session;
  try {
    await loadOrganizations();
  } catch (error) {
    state.orgs = [];
    pendingError = describe(error);
  }
  state.orgId = homeOrg()?.id ?? null;
  const target = state.wanted || homeHash();
  state.wanted = null;
  go(target);
}

async function signOut() {
  try {
    await request('DELETE', '/console/session');
  } catch (error) {
    showError(appError, error);
    return;
  }
  state.session = null;
  state.orgs = [];
  state.orgId = null;
  go('#/sign-in', 'You are signed out.');
}

function renderHeader() {
  const session = state.session;
  const brand = h('a', { class: 'brand', href: session ? homeHash() : '#/sign-in' },
    h('img', { src: '/assets/d365.svg', alt: '', width: 24, height: 24 }), 'Goals console');
  if (!session) {
    header.replaceChildren(brand);
    return;
  }
  const org = state.orgs.find((o) => o.id === state.orgId) || homeOrg();
  const path = currentPath();
  const navLink = (id, href, text, current) =>
    h('a', { id, href, text, 'aria-current': current ? 'page' : null });
  const projects = /^\/(orgs\/\d+\/)?projects/.test(path);
  const nav = h('nav', { 'aria-label': 'Main' },
    org ? navLink('nav-key-results', `#/orgs/${org.id}/key-results`, 'Key Results',
      !path.endsWith('/admin') && !projects) : null,
    org ? navLink('nav-projects', `#/orgs/${org.id}/projects`, 'Projects', projects) : null,
    org && isAdmin(session.role)
      ? navLink('nav-admin', `#/orgs/${org.id}/admin`, 'Admin', path.endsWith('/admin')) : null);

  let orgControl = null;
  if (state.orgs.length > 1) {
    const picker = h('select', { id: 'org-picker' },
      state.orgs.map((o) => h('option', {
        value: o.id,
        selected: org && o.id === org.id,
        text: o.tenant ? `${o.name} (${o.tenant})` : o.name,
      })));
    picker.addEventListener('change', () => {
      const screenKind = path.endsWith('/admin') ? 'admin' : projects ? 'projects' : 'key-results';
      go(`#/orgs/${picker.value}/${screenKind}`);
    });
    orgControl = h('div', { class: 'org-picker' }, h('label', { for: 'org-picker', text: 'Organization' }), picker);
  } else if (org) {
    orgControl = h('span', { class: 'org-name', id: 'org-name', text: org.name });
  }

  const who = session.user || 'API token';
  const user = h('span', { id: 'session-user', class: 'session-user' },
    who, ' · ', h('span', { id: 'session-role', text: roleName(session.role) }));
  const out = h('button', { type: 'button', id: 'sign-out', class: 'secondary', text: 'Sign out', onclick: signOut });
  header.replaceChildren(brand, nav, orgControl, h('div', { class: 'session' }, user, out));
}

function showNotFound(screen) {
  screen.heading('Page not found');
  screen.root.append(h('p', {}, 'There is no page at this address. ',
    h('a', { href: homeHash(), text: 'Go to the Key Results' }), '.'));
}

function showNoOrganization(screen) {
  screen.heading('No organization yet');
  screen.root.append(h('p', {
    text: 'This token reaches no organization. An admin creates organizations with the API or `goals-host org create`.',
  }));
}

async function start() {
  onSessionEnded(() => {
    if (!state.session) return;
    state.session = null;
    state.orgs = [];
    state.wanted = location.hash;
    go('#/sign-in', 'Your session ended. Sign in again to continue.');
  });
  // The skip link moves the focus without touching the hash the router owns.
  document.querySelector('.skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    state.session = await api.get('/console/session');
  } catch (error) {
    state.session = null;
    if (error.status !== 401) pendingError = describe(error);
  }
  if (state.session) {
    try {
      await loadOrganizations();
    } catch (error) {
      pendingError = describe(error);
    }
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
