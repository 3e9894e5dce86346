// The form editor: the JSON definition in a textarea, a helper that adds a field, and a live preview
// rendered by the server with the task page's own renderer (webapp/forms_render.py).
(function () {
  'use strict';
  var designer = window.CoordinaDesigner;
  var t = designer.t;
  var textarea = document.getElementById('form-json');
  var editor = designer.editor({ getContent: function () { return textarea.value; } });
  var timer = null;

  // The preview is a form to look at, never to send (an event listener: the CSP allows no inline handler).
  document.getElementById('preview').addEventListener('submit', function (event) { event.preventDefault(); });

  function parse() {
    try { return JSON.parse(textarea.value); } catch (error) { return null; }
  }

  function sections() {
    var select = document.getElementById('field-section');
    var form = parse();
    var titles = form && form.ui && Array.isArray(form.ui.sections) ? form.ui.sections.map(function (s) { return s.title; }) : [];
    var current = select.value;
    select.innerHTML = '';
    titles.concat(['']).forEach(function (title) {
      var option = document.createElement('option');
      option.value = title;
      option.textContent = title || '—';
      option.selected = title === current;
      select.appendChild(option);
    });
  }

  function refresh() {
    sections();
    designer.postJSON(editor.urls.preview, { content: textarea.value }).then(function (result) {
      var box = document.getElementById('preview-problems');
      var preview = document.getElementById('preview');
      box.innerHTML = '';
      if (result.data.html !== null && result.data.html !== undefined) {
        preview.innerHTML = result.data.html; // rendered and escaped by the server's form renderer
        return;
      }
      var note = document.createElement('p');
      note.textContent = t('preview_problems');
      box.appendChild(note);
      box.appendChild(designer.problemTable(result.data.problems || [], '', null));
    });
  }

  function schemaFor(kind, title, options, help) {
    var schema = { title: title };
    if (help) { schema.description = help; }
    if (kind === 'boolean') { schema.type = 'boolean'; }
    else if (kind === 'integer') { schema.type = 'integer'; }
    else if (kind === 'date') { schema.type = 'string'; schema.format = 'date'; }
    else if (kind === 'datetime') { schema.type = 'string'; schema.format = 'date-time'; }
    else if (kind === 'choice') {
      schema.type = 'string';
      schema.oneOf = options.map(function (label) {
        var value = label.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
        return { const: value, title: label };
      });
    } else { schema.type = 'string'; schema.maxLength = kind === 'textarea' ? 4000 : 200; }
    return schema;
  }

  function addField() {
    var form = parse();
    var name = document.getElementById('field-name').value.trim();
    if (!form) { editor.setStatus(t('bad_json', { detail: '' }), 'error'); return; }
    if (!/^[a-z][a-z0-9_]*$/.test(name)) { editor.setStatus(t('bad_field_name'), 'error'); return; }
    form.schema = form.schema || { type: 'object', properties: {} };
    form.schema.properties = form.schema.properties || {};
    if (form.schema.properties[name]) { editor.setStatus(t('field_exists'), 'error'); return; }
    var kind = document.getElementById('field-type').value;
    var options = document.getElementById('field-options').value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean);
    form.schema.properties[name] = schemaFor(kind, document.getElementById('field-title').value.trim() || name, options,
                                             document.getElementById('field-help').value.trim());
    if (document.getElementById('field-required').checked) {
      form.schema.required = (form.schema.required || []).concat([name]);
    }
    form.ui = form.ui || {};
    var section = document.getElementById('field-section').value;
    var target = (form.ui.sections || []).find(function (s) { return s.title === section; });
    if (target) { target.fields = (target.fields || []).concat([name]); }
    if (Array.isArray(form.ui.order)) { form.ui.order.push(name); }
    if (kind === 'textarea') { form.ui.widgets = form.ui.widgets || {}; form.ui.widgets[name] = 'textarea'; }
    textarea.value = JSON.stringify(form, null, 2) + '\n';
    editor.changed();
    editor.setStatus(t('added_field', { name: name }), 'ok');
    refresh();
  }

  textarea.addEventListener('input', function () {
    editor.changed();
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  });
  document.getElementById('add-field').addEventListener('click', addField);
  refresh();
}());
