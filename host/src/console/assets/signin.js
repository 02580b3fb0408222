// Sign-in: the API token is sent once to open a session (an HttpOnly cookie
// the server sets); the page keeps no copy of it.

import { api } from './api.js';
import { errorBox, field, h, showError } from './dom.js';

export function showSignIn(screen) {
  screen.heading('Sign in');
  const error = errorBox('sign-in-error');
  const token = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'data-autofocus': true,
  });
  const button = h('button', { id: 'sign-in', type: 'submit', text: 'Sign in' });
  const form = h('form', { class: 'card narrow', id: 'sign-in-form' },
    field('API token', token,
      'The token an admin gave you (it starts with ghk_). It opens a session in this browser; the page does not keep it.'),
    error,
    h('div', { class: 'actions' }, button));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, null);
    button.disabled = true;
    try {
      const session = await api.post('/console/session', { token: token.value.trim() });
      token.value = '';
      await screen.signedIn(session);
    } catch (failure) {
      if (!screen.alive()) return;
      showError(error, failure.status === 401 && !failure.problem?.detail
        ? 'That token is not known or was revoked. Check it, or ask an admin for a new one.'
        : failure);
      token.focus();
    } finally {
      button.disabled = false;
    }
  });
  screen.root.append(form);
}
