// api.js - the console's only way to the server: POST JSON to the same API
// every client uses, with the bearer token from sessionStorage.
//
// The token is kept in sessionStorage (gone when the tab closes), never in a
// cookie or the URL, and sent only as `Authorization: Bearer`.

const TOKEN_KEY = 'repod.token';
const ROLE_KEY = 'repod.role';
export const API_PREFIX = '/repository/v1/';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// 'anonymous', 'viewer', 'admin' or 'system' (learnt at sign-in).
export function role() {
  return token() ? (sessionStorage.getItem(ROLE_KEY) || 'viewer') : 'anonymous';
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ROLE_KEY);
}

// POST /repository/v1/<path> with body; resolves {data, headers}, rejects
// with an ApiError carrying the API's code and message (SPEC 2).
export async function call(path, body, tok) {
  const headers = {'Content-Type': 'application/json'};
  const t = tok === undefined ? token() : tok;
  if (t) headers.Authorization = 'Bearer ' + t;
  let resp;
  try {
    resp = await fetch(API_PREFIX + path, {method: 'POST', headers, body: JSON.stringify(body || {}),
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer'});
  } catch (e) {
    throw new ApiError(0, 'ERROR_NETWORK', 'The server did not answer (' + e.message + ').');
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch { data = null; }
  if (!resp.ok) {
    const d = data && data.detail ? data.detail : {};
    throw new ApiError(resp.status, d.code || 'ERROR_HTTP_' + resp.status,
      d.message || 'The server answered HTTP ' + resp.status + ' without a JSON error.');
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(resp.status, 'ERROR_BAD_ANSWER', 'The server answered something that is not JSON.');
  }
  return {data, headers: resp.headers};
}

// Whether tok may call a route of role need: a body-less call is refused
// with 403 before its body is read when the role is too small, and with a
// 400 (missing plugin_id / repository_id) otherwise; nothing is changed.
async function allowed(path, tok) {
  try {
    await call(path, {}, tok);
    return true;
  } catch (e) {
    if (e.status === 401) throw e;
    return e.status !== 403;
  }
}

// Checks tok (401 -> ApiError) and learns its role; stores both.
export async function signIn(tok) {
  await call('plugin/list', {query: {count_only: true}}, tok);
  let r = 'viewer';
  if (await allowed('repository/sync', tok)) r = 'system';
  else if (await allowed('plugin/update', tok)) r = 'admin';
  sessionStorage.setItem(TOKEN_KEY, tok);
  sessionStorage.setItem(ROLE_KEY, r);
  return r;
}

export function canWrite() {
  const r = role();
  return r === 'admin' || r === 'system';
}

// A curl command line for the same request (the token as $REPOD_TOKEN).
export function curlFor(path, body) {
  const q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  const parts = ['curl', '-sS', '-X', 'POST', q(location.origin + API_PREFIX + path),
    '-H', q('Content-Type: application/json')];
  if (token()) parts.push('-H', '"Authorization: Bearer $REPOD_TOKEN"');
  parts.push('-d', q(JSON.stringify(body)));
  return parts.join(' ');
}
