// actions.js - admin actions on a local plugin: enable, disable,
// deregister (after a confirmation), labels and tags through update.
// Shown only to admin and system tokens and only for local plugins; the
// server checks again (403 / 409 ERROR_NOT_LOCAL_PLUGIN are shown as sent).
import {call} from './api.js';
import {errorBox, h, mount, pretty} from './dom.js';

export function actionsPanel(p, reload) {
  const status = h('div', {id: 'action-status'});
  const run = async (verb, body, after) => {
    mount(status, h('p', {className: 'muted'}, verb + '…'));
    try {
      await call('plugin/' + verb, body);
      mount(status, h('p', {className: 'ok'}, verb + ': done'));
      if (after) after(); else reload();
    } catch (e) {
      mount(status, errorBox(e, verb + ' failed'));
    }
  };
  const id = {plugin_id: p.plugin_id};
  const toggle = p.state === 'ENABLED'
    ? h('button', {type: 'button', id: 'disable', onclick: () => run('disable', id)}, 'Disable')
    : h('button', {type: 'button', id: 'enable', onclick: () => run('enable', id)}, 'Enable');
  const confirmBox = h('span', {id: 'confirm-deregister', hidden: true},
    'Deregister ' + p.plugin_id + '? This cannot be undone. ',
    h('button', {type: 'button', id: 'deregister-yes', className: 'danger', onclick: () =>
      run('deregister', id, () => { location.hash = '#/catalog'; })}, 'Yes, deregister'),
    ' ',
    h('button', {type: 'button', id: 'deregister-no', onclick: () => { confirmBox.hidden = true; }}, 'Cancel'));
  const dereg = h('button', {type: 'button', id: 'deregister', className: 'danger',
    onclick: () => { confirmBox.hidden = false; }}, 'Deregister…');
  const labels = h('input', {type: 'text', id: 'edit-labels', size: 50,
    value: (Array.isArray(p.labels) ? p.labels : []).join(', ')});
  const tags = h('textarea', {id: 'edit-tags', rows: 5, cols: 60, value: pretty(p.tags || {})});
  const save = h('button', {type: 'button', id: 'save', onclick: () => {
    let t;
    try {
      t = JSON.parse(tags.value || '{}');
    } catch (e) {
      mount(status, errorBox({code: 'ERROR_INVALID_JSON', message: 'Tags are not valid JSON: ' + e.message}));
      return;
    }
    const l = labels.value.split(',').map((s) => s.trim()).filter((s) => s);
    run('update', {plugin_id: p.plugin_id, labels: l, tags: t});
  }}, 'Save labels and tags');
  return h('div', {className: 'actions', id: 'actions'},
    h('h2', {}, 'Actions'),
    h('div', {className: 'row'}, toggle, ' ', dereg, ' ', confirmBox),
    h('label', {}, 'Labels (comma-separated) ', labels),
    h('label', {}, 'Tags (JSON object) ', tags),
    save, status);
}
