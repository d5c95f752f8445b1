// dom.js - building the page without HTML strings.
//
// Every text that comes from the server (plugin names, tags, messages) goes
// into the page as a text node: h() never parses markup, and nothing in the
// console uses innerHTML, insertAdjacentHTML or document.write.

// h('a', {href: '#/x', className: 'c', onclick: fn}, 'text', child, ...)
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k in el) {
      el[k] = v;
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces the children of el.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// An API error (or any failure) as a visible box: HTTP status, the API's
// code and its message, never a blank page.
export function errorBox(err, what) {
  const status = err && err.status ? 'HTTP ' + err.status + ' ' : '';
  const code = err && err.code ? err.code : 'ERROR';
  const message = err && err.message ? err.message : String(err);
  return h('div', {className: 'error', role: 'alert'},
    what ? h('strong', {}, what + ': ') : null,
    h('span', {className: 'error-code'}, status + code),
    ' ',
    h('span', {className: 'error-message'}, message));
}

// An https: icon URL from tags.icon, or null (anything else is not shown).
export function iconImg(url, size) {
  if (typeof url !== 'string') return null;
  let u;
  try { u = new URL(url); } catch { return null; }
  if (u.protocol !== 'https:') return null;
  const img = h('img', {className: 'icon', alt: '', width: size, height: size,
    loading: 'lazy', referrerPolicy: 'no-referrer', decoding: 'async'});
  img.addEventListener('error', () => { img.hidden = true; });
  img.src = u.href;
  return img;
}

export function pretty(v) {
  return JSON.stringify(v, null, 2);
}

export function stateBadge(state) {
  return h('span', {className: 'state state-' + String(state || '').toLowerCase()}, state || '?');
}
