// The DMN editor: dmn-js (served from node_modules) opened on the decision table, in Spanish through
// dmn-js's translate service (dmn-js-es.js: npm has no community translation of dmn-js).
import spanish from './dmn-js-es.js';

const designer = window.CoordinaDesigner;
const t = designer.t;

function translate(template, replacements) {
  const values = replacements || {};
  return (spanish[template] || template).replace(/{([^}]+)}/g, (whole, key) => (key in values ? values[key] : whole));
}

const translateModule = { translate: ['value', translate] };
// dmn-js replaces `common.additionalModules` with each view's own: give the translation to every view.
const modeler = new window.DmnJS({
  container: '#canvas',
  drd: { additionalModules: [translateModule] },
  decisionTable: { additionalModules: [translateModule] },
  literalExpression: { additionalModules: [translateModule] },
  boxedExpression: { additionalModules: [translateModule] }
});
window.coordinaModeler = modeler;
const editor = designer.editor({ getContent: () => modeler.saveXML({ format: true }).then((result) => result.xml), pin });

const xml = await fetch(editor.urls.source, { credentials: 'same-origin' }).then((r) => r.text());
try {
  const { warnings } = await modeler.importXML(xml);
  if (warnings.length) {
    editor.setStatus(t('import_warning', { detail: warnings.map((w) => w.message.split('\n')[0]).join('; ') }), 'error');
  }
  const table = modeler.getViews().find((view) => view.type === 'decisionTable');
  if (table) { await modeler.open(table); }
} catch (error) {
  editor.setStatus(String(error.message || error), 'error');
}
modeler.on('views.changed', watch);
document.getElementById('undo').addEventListener('click', () => modeler.getActiveViewer().get('commandStack').undo());
document.getElementById('redo').addEventListener('click', () => modeler.getActiveViewer().get('commandStack').redo());
watch();

function watch() {
  const viewer = modeler.getActiveViewer();
  if (viewer && !viewer.coordinaWatched) {
    viewer.coordinaWatched = true;
    viewer.on('commandStack.changed', () => editor.changed());
  }
}

// Problems name a rule or a cell (its input/output entry id): mark that cell or row with the message.
function pin(problems) {
  document.querySelectorAll('.coordina-problem').forEach((element) => {
    element.classList.remove('coordina-problem');
    element.removeAttribute('title');
  });
  problems.forEach((problem) => {
    // Overlapping rules are named together ("period_medium / period_low"): mark each of them.
    (problem.element_id || '').split('/').map((part) => part.trim()).filter(Boolean).forEach((elementId) => {
      const id = CSS.escape(elementId);
      document.querySelectorAll(`[data-element-id="${id}"], [data-row-id="${id}"]`).forEach((element) => {
        element.classList.add('coordina-problem');
        element.title = [element.title, problem.message].filter(Boolean).join(' · ');
      });
    });
  });
}
