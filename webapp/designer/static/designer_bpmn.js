// The BPMN modeller: bpmn-js (served from node_modules) in Spanish (bpmn-js-i18n), with our side panel
// for the spiffworkflow:properties extension and lane agency kinds. Every change goes through the
// modeller's commands (modeling.updateProperties / updateModdleProperties), so undo, redo and the
// XML export keep working and the file stays standard BPMN.
const designer = window.CoordinaDesigner;
const t = designer.t;
const script = document.getElementById('bpmn-editor-script');
const { default: spanish } = await import(script.dataset.i18n);

const SPIFF_PROPERTIES = 'spiffworkflow:Properties';
const TASK_PROPERTIES = ['due', 'visibleBefore', 'reminderBefore', 'escalateAgencyAfter', 'escalateSupervisorAfter',
  'escalateCoordinatorAfter', 'priority'];

function translate(template, replacements) {
  const values = replacements || {};
  return (spanish[template] || template).replace(/{([^}]+)}/g, (whole, key) => (key in values ? values[key] : whole));
}

const editor = designer.editor({ getContent: () => modeler.saveXML({ format: true }).then((result) => result.xml), pin });
const descriptor = await fetch(editor.urls.moddle, { credentials: 'same-origin' }).then((r) => r.json());
const modeler = new window.BpmnJS({
  container: '#canvas',
  additionalModules: [{ translate: ['value', translate] }],
  moddleExtensions: { spiffworkflow: descriptor }
});
window.coordinaModeler = modeler; // for people debugging in the console, and for the browser tests

const moddle = modeler.get('moddle');
const modeling = modeler.get('modeling');
const panel = document.getElementById('panel');
let selected = null;

const xml = await fetch(editor.urls.source, { credentials: 'same-origin' }).then((r) => r.text());
try {
  const { warnings } = await modeler.importXML(xml);
  if (warnings.length) {
    editor.setStatus(t('import_warning', { detail: warnings.map((w) => w.message.split('\n')[0]).join('; ') }), 'error');
  }
  modeler.get('canvas').zoom('fit-viewport');
} catch (error) {
  editor.setStatus(String(error.message || error), 'error');
}
modeler.on('commandStack.changed', () => { editor.changed(); render(); });
modeler.on('selection.changed', (event) => { selected = event.newSelection[0] || null; render(); });
render();
document.getElementById('undo').addEventListener('click', () => modeler.get('commandStack').undo());
document.getElementById('redo').addEventListener('click', () => modeler.get('commandStack').redo());

// --- Reading and writing the extension ----------------------------------------------------------
function typeOf(element) { return element.businessObject.$type; }

function extension(bo, type) {
  return ((bo.extensionElements && bo.extensionElements.values) || []).find((value) => value.$type === type);
}

function propertyValue(element, name) {
  const props = extension(element.businessObject, SPIFF_PROPERTIES);
  const found = props && (props.properties || []).find((p) => p.name === name);
  return found ? found.value || '' : '';
}

function create(type, attrs, parent) {
  const created = moddle.create(type, attrs);
  created.$parent = parent;
  return created;
}

function ensureExtensionElements(element) {
  const bo = element.businessObject;
  if (!bo.extensionElements) {
    modeling.updateProperties(element, { extensionElements: create('bpmn:ExtensionElements', { values: [] }, bo) });
  }
  return bo.extensionElements;
}

function setProperty(element, name, value) {
  const text = value.trim();
  const ext = ensureExtensionElements(element);
  let props = extension(element.businessObject, SPIFF_PROPERTIES);
  if (!props) {
    if (!text) { return; }
    props = create(SPIFF_PROPERTIES, { properties: [] }, ext);
    modeling.updateModdleProperties(element, ext, { values: [...ext.values, props] });
  }
  const found = (props.properties || []).find((p) => p.name === name);
  if (found && !text) {
    modeling.updateModdleProperties(element, props, { properties: props.properties.filter((p) => p !== found) });
  } else if (found) {
    modeling.updateModdleProperties(element, found, { value: text });
  } else if (text) {
    const property = create('spiffworkflow:Property', { name, value: text }, props);
    modeling.updateModdleProperties(element, props, { properties: [...(props.properties || []), property] });
  }
}

function setCalledDecision(element, value) {
  const ext = ensureExtensionElements(element);
  const called = extension(element.businessObject, 'spiffworkflow:CalledDecisionId');
  if (called) {
    modeling.updateModdleProperties(element, called, { value: value.trim() });
  } else {
    const created = create('spiffworkflow:CalledDecisionId', { value: value.trim() }, ext);
    modeling.updateModdleProperties(element, ext, { values: [...ext.values, created] });
  }
}

// --- The side panel -------------------------------------------------------------------------------
function field(label, control, hint) {
  const wrapper = document.createElement('div');
  wrapper.className = 'field';
  const id = 'prop-' + Math.random().toString(36).slice(2, 9);
  control.id = id;
  const labelElement = document.createElement('label');
  labelElement.htmlFor = id;
  labelElement.textContent = label;
  wrapper.append(labelElement, control);
  if (hint) {
    const help = document.createElement('p');
    help.className = 'help';
    help.textContent = hint;
    wrapper.append(help);
  }
  return wrapper;
}

function input(value, onChange, name) {
  const element = document.createElement('input');
  element.type = 'text';
  element.value = value;
  if (name) { element.name = name; }
  element.addEventListener('change', () => onChange(element.value));
  return element;
}

function select(options, value, onChange, name) {
  const element = document.createElement('select');
  if (name) { element.name = name; }
  options.forEach(([optionValue, label]) => {
    const option = document.createElement('option');
    option.value = optionValue;
    option.textContent = label;
    option.selected = optionValue === value;
    element.append(option);
  });
  element.addEventListener('change', () => onChange(element.value));
  return element;
}

function render() {
  panel.innerHTML = '';
  const title = document.createElement('h2');
  title.textContent = t('selected');
  panel.append(title);
  if (!selected || selected.type === 'label') {
    const empty = document.createElement('p');
    empty.className = 'help';
    empty.textContent = t('nothing');
    panel.append(empty);
    return;
  }
  const element = selected;
  const bo = element.businessObject;
  const id = input(bo.id, () => {}, 'element-id');
  id.readOnly = true;
  panel.append(field(t('id'), id));
  panel.append(field(t('name'), input(bo.name || '', (value) => modeling.updateLabel(element, value), 'element-name')));
  const type = typeOf(element);
  if (type === 'bpmn:Lane') {
    const kinds = editor.data.kinds || [];
    const current = bo.name || '';
    const known = kinds.some(([code, label]) => label === current || code === current);
    const options = [...kinds.map(([, label]) => [label, label])];
    if (!known) { options.unshift([current, t('other_kind', { name: current || '—' })]); }
    const value = (kinds.find(([code, label]) => label === current || code === current) || [null, current])[1];
    panel.append(field(t('agency_kind'), select(options, value, (chosen) => modeling.updateProperties(element, { name: chosen }), 'lane-kind')));
    return;
  }
  if (type === 'bpmn:UserTask' || type === 'bpmn:ManualTask' || type === 'bpmn:StartEvent') {
    const forms = [['', t('no_form')], ...(editor.data.forms || []).map((name) => [name, name])];
    const current = propertyValue(element, 'form');
    if (current && !(editor.data.forms || []).includes(current)) { forms.push([current, current]); }
    panel.append(field(t('form'), select(forms, current, (value) => setProperty(element, 'form', value), 'prop-form')));
  }
  if (type === 'bpmn:StartEvent') {
    panel.append(field(t('replaces'), input(propertyValue(element, 'replaces'), (value) => setProperty(element, 'replaces', value), 'prop-replaces')));
  }
  if (type === 'bpmn:UserTask' || type === 'bpmn:ManualTask') {
    TASK_PROPERTIES.forEach((name) => {
      panel.append(field(t(name), input(propertyValue(element, name), (value) => setProperty(element, name, value), 'prop-' + name),
        name === 'priority' ? '' : t('duration_hint')));
    });
    const identity = propertyValue(element, 'needsIdentity');
    panel.append(field(t('needsIdentity'), select([['', t('unset')], ['true', t('yes')], ['false', t('no')]], identity,
      (value) => setProperty(element, 'needsIdentity', value), 'prop-needsIdentity')));
  }
  if (type === 'bpmn:BusinessRuleTask') {
    const called = extension(bo, 'spiffworkflow:CalledDecisionId');
    const decision = called ? called.value || '' : '';
    panel.append(field(t('decision'), input(decision, (value) => setCalledDecision(element, value), 'called-decision')));
    const file = (editor.data.decisions || {})[decision];
    if (file) {
      const link = document.createElement('a');
      link.href = editor.urls.edit.replace('FILE', encodeURIComponent(file));
      link.textContent = t('edit_decision') + ' (' + file + ')';
      link.className = 'edit-decision';
      panel.append(link);
    }
  }
}

// --- Validation problems pinned on their elements ---------------------------------------------------
let pinned = [];
function pin(problems) {
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const registry = modeler.get('elementRegistry');
  pinned.forEach((elementId) => canvas.removeMarker(elementId, 'coordina-problem'));
  overlays.remove({ type: 'coordina-problem' });
  const messages = {};
  problems.forEach((problem) => {
    if (problem.element_id && registry.get(problem.element_id)) {
      (messages[problem.element_id] = messages[problem.element_id] || []).push(problem.message);
    }
  });
  pinned = Object.keys(messages);
  pinned.forEach((elementId) => {
    canvas.addMarker(elementId, 'coordina-problem');
    const note = document.createElement('div');
    note.className = 'problem-overlay';
    note.setAttribute('data-element', elementId);
    note.textContent = messages[elementId].join(' · ');
    overlays.add(elementId, 'coordina-problem', { position: { bottom: 8, left: 0 }, html: note });
  });
}
