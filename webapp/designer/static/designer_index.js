// The definitions page: validate every draft in place, and open a new file's editor.
(function () {
  'use strict';
  var designer = window.CoordinaDesigner;
  var button = document.getElementById('validate');
  if (button) {
    button.addEventListener('click', function () {
      var box = document.getElementById('validation');
      box.textContent = designer.t('validating');
      designer.postJSON(button.getAttribute('data-url'), {}).then(function (result) {
        designer.showValidation(box, result.data, '', null);
      });
    });
  }
  var form = document.getElementById('new-file');
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var name = document.getElementById('new-name').value.trim();
      var kind = document.getElementById('new-kind').value;
      if (!/^[a-z][a-z0-9_]*$/.test(name)) { return; }
      var base = form.querySelector('button').getAttribute('data-base');
      window.location.href = base.replace('NAME', encodeURIComponent(name + '.' + kind));
    });
  }
}());
