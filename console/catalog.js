// catalog.js - the catalog: keyword search (debounced), facets with counts
// from plugin stat, sort, paging with the total count.  The query lives in
// the URL (#/catalog?q=..&provider=..&resource_type=..&state=..&repository=..
// &sort=..&page=..), so a search can be bookmarked and shared.
import {call} from './api.js';
import {errorBox, h, iconImg, mount, stateBadge} from './dom.js';

export const PAGE_SIZE = 10;
const FACETS = [
  {param: 'provider', key: 'provider', title: 'Provider'},
  {param: 'resource_type', key: 'resource_type', title: 'Resource type'},
  {param: 'state', key: 'state', title: 'State'},
  {param: 'repository', key: 'repository_info.repository_id', title: 'Repository'},
];
const SORTS = {
  'name': {key: 'name', desc: false, label: 'Name A→Z'},
  '-name': {key: 'name', desc: true, label: 'Name Z→A'},
  '-updated_at': {key: 'updated_at', desc: true, label: 'Recently updated'},
  'updated_at': {key: 'updated_at', desc: false, label: 'Least recently updated'},
};

// The list/stat filter of params, leaving out the facet `skip`.
function filters(params, skip) {
  const out = [];
  for (const f of FACETS) {
    const v = params.get(f.param);
    if (v && f.param !== skip) out.push({k: f.key, v, o: 'eq'});
  }
  return out;
}

function withKeyword(query, params) {
  const q = (params.get('q') || '').trim();
  if (q) query.keyword = q;
  return query;
}

function facetQuery(params, f) {
  const keys = [{key: f.key, name: 'value'}];
  if (f.param === 'repository') {
    keys.push({key: 'repository_info.name', name: 'label'},
      {key: 'repository_info.repository_type', name: 'type'});
  }
  return withKeyword({
    filter: filters(params, f.param),
    aggregate: [
      {group: {keys, fields: [{name: 'count', operator: 'count'}]}},
      {sort: {key: 'count', desc: true}},
    ],
  }, params);
}

function listQuery(params) {
  const sort = SORTS[params.get('sort') || 'name'] || SORTS.name;
  const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
  return withKeyword({
    filter: filters(params, null),
    sort: {key: sort.key, desc: sort.desc},
    page: {start: (page - 1) * PAGE_SIZE + 1, limit: PAGE_SIZE},
  }, params);
}

function hashOf(params) {
  const p = new URLSearchParams();
  for (const [k, v] of params) if (v) p.set(k, v);
  const s = p.toString();
  return '#/catalog' + (s ? '?' + s : '');
}

export function create() {
  let params = new URLSearchParams();
  let timer = null;
  let seq = 0;

  const search = h('input', {type: 'search', id: 'search', placeholder: 'Search name, id, provider, labels',
    autocomplete: 'off', size: 40});
  const sortSel = h('select', {id: 'sort'},
    Object.entries(SORTS).map(([v, s]) => h('option', {value: v}, s.label)));
  const facetsEl = h('aside', {className: 'facets', id: 'facets'});
  const summary = h('p', {id: 'summary', className: 'summary'});
  const notice = h('div', {id: 'notice'});
  const tbody = h('tbody', {id: 'results'});
  const pager = h('div', {className: 'pager', id: 'pager'});
  const errors = h('div', {id: 'catalog-error'});

  // Changes the query: the URL first (replaceState: no history entry per
  // keystroke), then the results.
  function go(changes, resetPage = true) {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === '') p.delete(k); else p.set(k, v);
    }
    if (resetPage && !('page' in changes)) p.delete('page');
    history.replaceState(null, '', hashOf(p));
    return update(p);
  }

  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => go({q: search.value.trim()}), 300);
  });
  sortSel.addEventListener('change', () => go({sort: sortSel.value === 'name' ? null : sortSel.value}));

  const el = h('section', {className: 'page catalog'},
    h('div', {className: 'toolbar'}, search, ' ', h('label', {}, 'Sort ', sortSel)),
    errors, notice,
    h('div', {className: 'layout'}, facetsEl,
      h('div', {className: 'results'}, summary,
        h('table', {className: 'grid'},
          h('thead', {}, h('tr', {}, ['', 'Name', 'Provider', 'Resource type', 'Repository', 'State']
            .map((t) => h('th', {}, t)))),
          tbody),
        pager)));

  function renderFacet(f, rows) {
    const selected = params.get(f.param) || '';
    const items = rows.map((r) => {
      const value = r.value === undefined || r.value === null ? '' : String(r.value);
      const label = f.param === 'repository' ? (r.label || value) + ' (' + (r.type || '?') + ')' : (value || '(none)');
      const on = selected === value;
      return h('li', {},
        h('a', {href: '#', className: on ? 'facet on' : 'facet',
          dataset: {facet: f.param, value}, onclick: (ev) => {
            ev.preventDefault();
            go({[f.param]: on ? null : value});
          }},
        h('span', {className: 'facet-label'}, label), ' ',
        h('span', {className: 'count'}, String(r.count))));
    });
    return h('div', {className: 'facet-group', dataset: {facet: f.param}},
      h('h3', {}, f.title), items.length ? h('ul', {}, items) : h('p', {className: 'muted'}, 'none'));
  }

  function renderRow(p) {
    const ri = p.repository_info || {};
    const link = '#/plugin/' + encodeURIComponent(p.plugin_id) +
      (ri.repository_id ? '?repository_id=' + encodeURIComponent(ri.repository_id) : '');
    return h('tr', {className: 'plugin-row', dataset: {pluginId: p.plugin_id}},
      h('td', {}, iconImg(p.tags && p.tags.icon, 24)),
      h('td', {}, h('a', {href: link, className: 'plugin-name'}, p.name), h('div', {className: 'muted small'}, p.plugin_id)),
      h('td', {}, p.provider || ''),
      h('td', {}, p.resource_type || ''),
      h('td', {}, (ri.name || '?') + (ri.repository_type === 'remote' ? ' (remote)' : ' (local)')),
      h('td', {}, stateBadge(p.state)));
  }

  async function update(p) {
    params = new URLSearchParams(p);
    const my = ++seq;
    delete el.dataset.loaded;
    if (document.activeElement !== search) search.value = params.get('q') || '';
    sortSel.value = SORTS[params.get('sort')] ? params.get('sort') : 'name';
    const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    const listing = call('plugin/list', {query: listQuery(params)});
    const facetCalls = FACETS.map((f) => call('plugin/stat', {query: facetQuery(params, f)}));
    let list;
    try {
      list = await listing;
    } catch (e) {
      if (my !== seq) return;
      mount(errors, errorBox(e, 'Search failed'));
      mount(tbody);
      summary.textContent = '';
      mount(pager);
      el.dataset.loaded = hashOf(params);
      return;
    }
    if (my !== seq) return;
    mount(errors);
    const partial = list.headers.get('X-Partial');
    mount(notice, partial ? h('p', {className: 'warn'},
      'Some remote repositories could not answer and are left out: ' + partial) : null);
    const total = list.data.total_count || 0;
    const results = list.data.results || [];
    const first = results.length ? (page - 1) * PAGE_SIZE + 1 : 0;
    summary.dataset.total = String(total);
    summary.textContent = total + ' plugins' + (results.length ? ' — showing ' + first + '–' + (first + results.length - 1) : '');
    mount(tbody, results.map(renderRow));
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    mount(pager,
      h('button', {type: 'button', id: 'prev', disabled: page <= 1, onclick: () => go({page: String(page - 1)}, false)}, '← Previous'),
      h('span', {id: 'page-info'}, ' Page ' + page + ' of ' + pages + ' '),
      h('button', {type: 'button', id: 'next', disabled: page >= pages, onclick: () => go({page: String(page + 1)}, false)}, 'Next →'));
    const groups = await Promise.all(facetCalls.map((c) => c.then((r) => r.data.results || [], (e) => e)));
    if (my !== seq) return;
    mount(facetsEl, FACETS.map((f, i) => (groups[i] instanceof Error || !Array.isArray(groups[i]))
      ? h('div', {className: 'facet-group'}, h('h3', {}, f.title), errorBox(groups[i]))
      : renderFacet(f, groups[i])));
    el.dataset.loaded = hashOf(params); // everything of this query is on the page
  }

  return {el, update};
}
