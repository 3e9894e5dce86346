// The text editor of JSON definitions other than forms (the risk scale): a textarea and the toolbar.
(function () {
  'use strict';
  var textarea = document.getElementById('source-json');
  var editor = window.CoordinaDesigner.editor({ getContent: function () { return textarea.value; } });
  textarea.addEventListener('input', editor.changed);
}());
