// Building the page. Everything is made with createElement, and data only ever
// goes in as text (textContent, text nodes) or attribute values (setAttribute),
// so a name that looks like markup (an img tag with an error handler, say)
// shows as those characters and never becomes markup.

import { describe } from './api.js';

function appendChildren(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function applyProps(element, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') {
      element.textContent = String(value);
    } else if (key.startsWith('on')) {
      // Handlers are functions only: an "on…" attribute would be inline script.
      if (typeof value !== 'function') throw new TypeError(`${key} must be a function`);
      element.addEventListener(key.slice(2), value);
    } else if (value === true) {
      element.setAttribute(key, '');
    } else {
      element.setAttribute(key, String(value));
    }
  }
}

// h('a', { href: '#/x', class: 'link', onclick: fn }, 'text', child, ...)
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  applyProps(element, props);
  appendChildren(element, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, props = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  applyProps(element, props);
  appendChildren(element, children);
  return element;
}

// An empty live region for a screen's errors: setting its text makes screen
// readers announce it.
export function errorBox(id) {
  return h('div', { class: 'alert', role: 'alert', id });
}

export function showError(box, error) {
  if (error && error.name === 'AbortError') return;
  box.textContent = error === null || error === undefined ? '' : typeof error === 'string' ? error : describe(error);
}

export function statusBox(id) {
  return h('p', { class: 'status', role: 'status', id });
}

// Runs change(), which may replace elements inside container, and puts the
// focus back on the element with the same id if it was inside and got lost:
// a refresh must not throw a keyboard user back to the top of the page.
export function keepFocus(container, change) {
  const active = document.activeElement;
  const id = active && active.id && container.contains(active) ? active.id : null;
  change();
  if (id && document.activeElement !== active) document.getElementById(id)?.focus();
}

// "Really?" next to the button that asks, in the page itself (no browser
// dialog), so it works the same with the keyboard, screen readers and tests.
// Its buttons are #ID-confirm and #ID-cancel.
export function confirmInline(trigger, { id, message, confirmLabel, onConfirm }) {
  const open = document.getElementById(`${id}-cancel`);
  if (open) {
    open.focus();
    return;
  }
  const close = () => {
    box.remove();
    trigger.setAttribute('aria-expanded', 'false');
  };
  const cancel = h('button', { type: 'button', id: `${id}-cancel`, text: 'Cancel' });
  const confirm = h('button', { type: 'button', id: `${id}-confirm`, class: 'danger', text: confirmLabel });
  const box = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm' },
    h('p', { text: message }), confirm, cancel);
  cancel.addEventListener('click', () => {
    close();
    trigger.focus();
  });
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    cancel.disabled = true;
    try {
      await onConfirm();
    } finally {
      close();
    }
  });
  trigger.setAttribute('aria-expanded', 'true');
  trigger.after(box);
  cancel.focus();
}

// A labelled form field: the label is tied to the control by id.
export function field(label, control, help) {
  const helpText = help ? h('p', { class: 'help', id: `${control.id}-help`, text: help }) : null;
  if (helpText) control.setAttribute('aria-describedby', helpText.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, helpText);
}

// A definition list from [term, value] pairs; a value may be text or a node.
export function facts(pairs, props = {}) {
  return h('dl', { class: 'facts', ...props },
    pairs.filter(Boolean).map(([term, value]) => [h('dt', { text: term }), h('dd', {}, value)]));
}
