// The log-in / register form.

import * as api from '../api.js';
import { byId } from '../dom.js';

export function mountAuth() {
  const form = byId('auth-form');
  const error = byId('auth-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const action = event.submitter?.value ?? 'login';
    const data = new FormData(form);
    const username = String(data.get('username')).trim();
    const email = String(data.get('email')).trim();
    const password = String(data.get('password'));
    error.textContent = '';
    if (action === 'register' && !email) {
      error.textContent = 'An email is needed to register.';
      return;
    }
    for (const button of form.querySelectorAll('button')) button.disabled = true;
    try {
      if (action === 'register') await api.register(username, email, password);
      else await api.login(username, password);
      form.reset();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      for (const button of form.querySelectorAll('button')) button.disabled = false;
    }
  });
}
