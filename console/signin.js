// signin.js - the sign-in page: a bearer token pasted once, checked against
// the API, kept in sessionStorage for this tab.
import {role, signIn, signOut, token} from './api.js';
import {errorBox, h, mount} from './dom.js';

export function create(ctx) {
  const status = h('div', {id: 'signin-status'});
  const input = h('input', {type: 'password', id: 'token-input', autocomplete: 'off',
    spellcheck: false, placeholder: 'paste a token', size: 48});
  const submit = async () => {
    const tok = input.value.trim();
    if (!tok) {
      mount(status, errorBox({code: 'ERROR_REQUIRED_PARAMETER', message: 'Paste a token first.'}));
      return;
    }
    mount(status, h('p', {className: 'muted'}, 'Checking…'));
    try {
      const r = await signIn(tok);
      input.value = '';
      ctx.refreshWho();
      mount(status, h('p', {className: 'ok', id: 'signin-ok'}, 'Signed in as ' + r + '.'));
      location.hash = '#/catalog';
    } catch (e) {
      mount(status, errorBox(e, 'Sign-in refused'));
    }
  };
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') submit(); });
  const out = h('button', {id: 'signout', type: 'button', onclick: () => {
    signOut();
    ctx.refreshWho();
    update();
  }}, 'Sign out');
  const current = h('p', {id: 'signin-current'});
  const el = h('section', {className: 'page signin'},
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token (from `repod token create`). It is kept in this tab only ' +
      '(sessionStorage) and sent as an Authorization: Bearer header. Without a token the console ' +
      'shows what anonymous reads allow.'),
    h('div', {className: 'row'}, input, ' ',
      h('button', {id: 'signin', type: 'button', onclick: submit}, 'Sign in')),
    status, current, out);
  function update() {
    current.textContent = token() ? 'Currently signed in as ' + role() + '.' : 'Not signed in (anonymous).';
    out.hidden = !token();
  }
  return {el, update};
}
