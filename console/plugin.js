// plugin.js - one plugin: every field, capability, template, labels, tags,
// repository_info, the versions (get-versions, or the API's message when the
// registry cannot answer), the raw JSON and a curl command for the same
// request.  Admin actions on local plugins (actions.js).
import {call, canWrite, curlFor} from './api.js';
import {errorBox, h, iconImg, mount, pretty, stateBadge} from './dom.js';
import {actionsPanel} from './actions.js';

const SCALARS = ['plugin_id', 'name', 'state', 'resource_type', 'service_type', 'image', 'provider',
  'registry_type', 'registry_url', 'domain_id', 'created_at', 'updated_at'];
const OBJECTS = ['capability', 'template', 'registry_config', 'docs', 'repository_info'];

function copyBox(id, text) {
  const area = h('textarea', {id, readOnly: true, rows: 3, className: 'copy', value: text});
  const status = h('span', {className: 'muted'});
  const btn = h('button', {type: 'button', onclick: async () => {
    area.select();
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = ' copied';
    } catch {
      status.textContent = ' selected: press Ctrl+C';
    }
  }}, 'Copy');
  return h('div', {}, area, btn, status);
}

export function create(ctx) {
  const pluginId = ctx.arg;
  const el = h('section', {className: 'page plugin'});
  let repositoryId = '';

  function body() {
    const b = {plugin_id: pluginId};
    if (repositoryId) b.repository_id = repositoryId;
    return b;
  }

  function render(p) {
    const ri = p.repository_info || {};
    const local = ri.repository_type === 'local';
    const rows = SCALARS.filter((k) => k in p).map((k) =>
      h('tr', {}, h('th', {}, k), h('td', {dataset: {field: k}}, k === 'state' ? stateBadge(p[k]) : String(p[k]))));
    const labels = Array.isArray(p.labels) ? p.labels : [];
    const tags = p.tags && typeof p.tags === 'object' ? p.tags : {};
    const versions = h('div', {id: 'versions'}, h('p', {className: 'muted'}, 'Loading versions…'));
    mount(el,
      h('p', {}, h('a', {href: '#/catalog'}, '← Catalog')),
      h('h1', {id: 'plugin-title'}, iconImg(tags.icon, 40), ' ', h('span', {id: 'plugin-name'}, p.name), ' ', stateBadge(p.state)),
      h('p', {className: 'muted'}, (ri.name || '?') + ' — ' + (local ? 'local repository' : 'remote repository (read-only here)')),
      canWrite() && local ? actionsPanel(p, () => load()) : null,
      h('h2', {}, 'Fields'),
      h('table', {className: 'fields', id: 'fields'}, h('tbody', {}, rows)),
      h('h2', {}, 'Labels'),
      labels.length ? h('ul', {className: 'labels', id: 'labels'}, labels.map((l) => h('li', {}, String(l))))
        : h('p', {className: 'muted', id: 'labels'}, 'none'),
      h('h2', {}, 'Tags'),
      h('table', {className: 'fields', id: 'tags'}, h('tbody', {}, Object.entries(tags).map(([k, v]) =>
        h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'string' ? v : pretty(v)))))),
      h('h2', {}, 'Versions'),
      versions,
      OBJECTS.map((k) => [h('h2', {}, k), h('pre', {className: 'json', id: 'json-' + k}, pretty(p[k] === undefined ? null : p[k]))]),
      h('h2', {}, 'Request'),
      copyBox('curl', curlFor('plugin/get', body())),
      h('details', {id: 'raw'}, h('summary', {}, 'Raw JSON'), h('pre', {className: 'json'}, pretty(p))));
    call('plugin/get-versions', body()).then(({data}) => {
      const list = Array.isArray(data.results) ? data.results : [];
      mount(versions, list.length
        ? h('ol', {className: 'versions'}, list.map((v) => h('li', {}, String(v))))
        : h('p', {className: 'muted'}, 'No versions.'),
      h('p', {className: 'muted small'}, (data.total_count ?? list.length) + ' versions'));
      versions.dataset.loaded = 'ok';
    }, (e) => {
      mount(versions, errorBox(e, 'Versions unavailable'));
      versions.dataset.loaded = 'error';
    });
    el.dataset.loaded = p.plugin_id;
  }

  async function load() {
    delete el.dataset.loaded;
    mount(el, h('p', {className: 'muted'}, 'Loading…'));
    try {
      const {data} = await call('plugin/get', body());
      render(data);
    } catch (e) {
      mount(el, h('p', {}, h('a', {href: '#/catalog'}, '← Catalog')), errorBox(e, 'Cannot read plugin ' + pluginId));
      el.dataset.loaded = 'error';
    }
  }

  async function update(params) {
    repositoryId = params.get('repository_id') || '';
    await load();
  }
  return {el, update};
}
