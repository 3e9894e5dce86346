// The invariants editor: the JSON text in a textarea, saved and validated by the common toolbar.
(function () {
  'use strict';
  var textarea = document.getElementById('invariants-json');
  var editor = window.CoordinaDesigner.editor({ getContent: function () { return textarea.value; } });
  textarea.addEventListener('input', editor.changed);
}());
