// app.js - the console's entry: a hash router over the pages.
//
//   #/signin                         sign-in.js
//   #/catalog?q=..&provider=..       catalog.js (the query lives in the URL)
//   #/plugin/<plugin_id>?repository_id=..   plugin.js
//   #/repositories                   repositories.js
import {role, token} from './api.js';
import {errorBox, mount} from './dom.js';
import * as catalog from './catalog.js';
import * as plugin from './plugin.js';
import * as repositories from './repositories.js';
import * as signin from './signin.js';

const pages = {catalog, plugin, repositories, signin};
let current = null; // {name, page instance}

// '#/plugin/x%2Fy?a=1' -> {name: 'plugin', arg: 'x/y', params: URLSearchParams}
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  const [name, ...rest] = path.split('/');
  return {name: name || 'catalog', arg: rest.length ? decodeURIComponent(rest.join('/')) : '', params};
}

function showWho() {
  const who = document.getElementById('whoami');
  const r = role();
  who.textContent = r === 'anonymous' ? 'anonymous' : 'signed in (' + r + ')';
  who.dataset.role = r;
  document.getElementById('nav-signin').textContent = token() ? 'Token' : 'Sign in';
}

async function route() {
  const main = document.getElementById('main');
  const {name, arg, params} = parseHash(location.hash);
  const page = pages[name];
  showWho();
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', a.id === 'nav-' + name);
  }
  if (!page) {
    mount(main, errorBox({code: 'ERROR_UNKNOWN_PAGE', message: 'No such page: ' + name}));
    current = null;
    return;
  }
  try {
    if (current && current.name === name && current.view.update && current.arg === arg) {
      await current.view.update(params);
      return;
    }
    const view = page.create({arg, params, refreshWho: showWho});
    current = {name, arg, view};
    mount(main, view.el);
    await view.update(params);
  } catch (e) {
    mount(main, errorBox(e, 'The page failed'));
  }
}

window.addEventListener('hashchange', route);
// A failure nobody caught still shows up on the page, never as a blank one.
window.addEventListener('unhandledrejection', (ev) => {
  document.getElementById('main').prepend(errorBox(ev.reason, 'Unexpected failure'));
});
window.addEventListener('error', (ev) => {
  document.getElementById('main').prepend(errorBox(ev.error || ev.message, 'Unexpected failure'));
});
if (!location.hash) history.replaceState(null, '', '#/catalog');
route();

