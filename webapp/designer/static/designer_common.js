// Shared by the designer's pages: translated texts, JSON calls with the CSRF token, problem lists,
// and the save / validate toolbar of the three editors (BPMN, DMN, form).
(function () {
  'use strict';

  function readJSON(id, fallback) {
    var element = document.getElementById(id);
    if (!element) { return fallback; }
    try { return JSON.parse(element.textContent); } catch (error) { return fallback; }
  }

  var texts = readJSON('designer-texts', {});

  function t(key, params) {
    var text = texts[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split('{' + name + '}').join(String(params[name]));
    });
    return text;
  }

  function postJSON(url, body) {
    var token = document.querySelector('meta[name="csrf-token"]');
    return fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': token ? token.content : '' },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, ok: response.ok, data: data };
      });
    });
  }

  function cell(tag, text, className) {
    var element = document.createElement(tag);
    element.textContent = text === null || text === undefined ? '' : String(text);
    if (className) { element.className = className; }
    return element;
  }

  // A table of problems; each problem of another file links to its editor.
  function problemTable(problems, currentFile, editUrl) {
    var table = document.createElement('table');
    table.className = 'problem-list';
    var head = document.createElement('tr');
    [t('file'), t('element'), t('line'), t('message')].forEach(function (label) { head.appendChild(cell('th', label)); });
    table.appendChild(document.createElement('thead')).appendChild(head);
    var body = table.appendChild(document.createElement('tbody'));
    problems.forEach(function (problem) {
      var row = body.appendChild(document.createElement('tr'));
      row.setAttribute('data-element', problem.element_id || '');
      var fileCell = row.appendChild(document.createElement('td'));
      if (problem.file !== currentFile && editUrl && /\.(bpmn|dmn|json)$/.test(problem.file)) {
        var link = fileCell.appendChild(cell('a', problem.file));
        link.href = editUrl.replace('FILE', encodeURIComponent(problem.file));
      } else {
        fileCell.appendChild(cell('code', problem.file));
      }
      row.appendChild(cell('td', problem.element_id || ''));
      row.appendChild(cell('td', problem.line || '', 'num'));
      row.appendChild(cell('td', problem.message));
    });
    return table;
  }

  function showValidation(container, data, currentFile, editUrl) {
    container.innerHTML = '';
    if (data.valid) {
      container.appendChild(cell('p', t('valid'), 'flash info'));
      return;
    }
    var box = container.appendChild(document.createElement('section'));
    box.className = 'problems';
    box.setAttribute('role', 'alert');
    box.appendChild(cell('h2', t('problems', { count: data.problems.length })));
    box.appendChild(problemTable(data.problems, currentFile, editUrl));
  }

  // The toolbar of an editor: `getContent` returns (a promise of) the text to save; `pin(problems)`
  // marks this file's problems on the diagram. Returns { dirty(), setStatus() }.
  function editor(options) {
    var data = readJSON('editor-data', {});
    var urls = readJSON('editor-urls', {});
    var status = document.getElementById('status');
    var state = { version: data.version, dirty: false };

    function setStatus(text, kind) {
      status.textContent = text;
      status.className = kind || '';
    }

    function save() {
      setStatus(t('saving'));
      return Promise.resolve(options.getContent()).then(function (content) {
        return postJSON(urls.save, { content: content, version: state.version });
      }).then(function (result) {
        if (result.ok) {
          state.version = result.data.version;
          state.dirty = false;
          setStatus(t('saved', { version: result.data.version }), 'ok');
          return true;
        }
        var message = result.status === 409 ? t('conflict') : (result.data.error && result.data.error.message) || t('failed');
        if (result.data.error && result.data.error.problems) {
          showValidation(document.getElementById('validation'), { valid: false, problems: result.data.error.problems }, data.file, urls.edit);
        }
        setStatus(message, 'error');
        return false;
      }).catch(function () { setStatus(t('failed'), 'error'); return false; });
    }

    function validate(button) {
      return save().then(function (saved) {
        if (!saved) { return; }
        setStatus(t('validating'));
        return postJSON(button.getAttribute('data-url'), {}).then(function (result) {
          showValidation(document.getElementById('validation'), result.data, data.file, urls.edit);
          if (options.pin) { options.pin(result.data.problems.filter(function (p) { return p.file === data.file; })); }
          setStatus(result.data.valid ? t('valid') : t('problems', { count: result.data.problems.length }), result.data.valid ? 'ok' : 'error');
        });
      });
    }

    document.getElementById('save').addEventListener('click', save);
    var validateButton = document.getElementById('validate');
    validateButton.addEventListener('click', function () { validate(validateButton); });
    window.addEventListener('beforeunload', function (event) {
      if (state.dirty) { event.preventDefault(); event.returnValue = ''; }
    });
    return {
      data: data, urls: urls, setStatus: setStatus,
      changed: function () { state.dirty = true; setStatus(t('unsaved')); },
      save: save
    };
  }

  window.CoordinaDesigner = { t: t, postJSON: postJSON, problemTable: problemTable, showValidation: showValidation,
                              editor: editor, readJSON: readJSON };
}());
