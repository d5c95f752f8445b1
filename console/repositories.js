// repositories.js - the local and remote repositories with each remote's
// upstream health (state, last sync, last error, cached plugins), and for a
// system token a sync button on remote repositories (repository sync).
import {call, role} from './api.js';
import {errorBox, h, mount, stateBadge} from './dom.js';

export function create() {
  const el = h('section', {className: 'page repositories'});
  const status = h('div', {id: 'repo-status'}); // kept across reloads: says how the last sync went

  function row(r, status) {
    const up = r.upstream || {};
    const remote = r.repository_type === 'remote';
    const sync = remote && role() === 'system'
      ? h('button', {type: 'button', className: 'sync', dataset: {repositoryId: r.repository_id}, onclick: async (ev) => {
        ev.target.disabled = true;
        mount(status, h('p', {className: 'muted'}, 'Syncing ' + r.name + '…'));
        try {
          const {data} = await call('repository/sync', {repository_id: r.repository_id});
          mount(status, h('p', {className: 'ok', id: 'sync-result'},
            'Synced ' + r.name + ': ' + (data.plugins ?? '?') + ' plugins.'));
          await update();
        } catch (e) {
          mount(status, errorBox(e, 'Sync of ' + r.name + ' failed'));
          ev.target.disabled = false;
        }
      }}, 'Sync now')
      : null;
    return h('tr', {className: 'repo-row', dataset: {repositoryId: r.repository_id}},
      h('td', {}, r.name, h('div', {className: 'muted small'}, r.repository_id)),
      h('td', {}, r.repository_type),
      h('td', {}, r.endpoint || (remote ? '(hidden)' : '—')),
      h('td', {}, r.priority === undefined ? '' : String(r.priority)),
      h('td', {}, remote ? stateBadge(up.state) : 'this server'),
      h('td', {}, remote ? (up.last_sync_at || 'never') : ''),
      h('td', {className: 'last-error'}, remote ? (up.last_error || '') : ''),
      h('td', {}, remote && up.cached_plugins !== undefined ? String(up.cached_plugins) : ''),
      h('td', {}, sync));
  }

  async function update() {
    let data;
    try {
      ({data} = await call('repository/list', {query: {sort: {key: 'priority'}}}));
    } catch (e) {
      mount(el, h('h1', {}, 'Repositories'), errorBox(e, 'Cannot list repositories'));
      el.dataset.loaded = 'error';
      return;
    }
    const results = data.results || [];
    mount(el, h('h1', {}, 'Repositories'),
      h('p', {className: 'muted'}, results.length + ' repositories. Local plugins are searched first, ' +
        'then remote repositories by ascending priority.'),
      status,
      h('table', {className: 'grid', id: 'repositories'},
        h('thead', {}, h('tr', {}, ['Name', 'Type', 'Endpoint', 'Priority', 'Upstream', 'Last sync',
          'Last error', 'Cached plugins', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, results.map((r) => row(r, status)))));
    el.dataset.loaded = String(Date.now());
  }
  return {el, update};
}
