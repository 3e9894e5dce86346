// Draw each running process of a case with bpmn-js (served by the app) and mark its steps:
// completed, active and overdue. The page works without this script; it only adds the pictures.
(function () {
  'use strict';

  if (typeof window.BpmnJS === 'undefined' || !window.fetch) {
    return;
  }

  function ids(element, name) {
    try {
      return JSON.parse(element.getAttribute('data-' + name) || '[]');
    } catch (error) {
      return [];
    }
  }

  function draw(element) {
    var viewer = new window.BpmnJS({ container: element });
    fetch(element.getAttribute('data-src'), { credentials: 'same-origin', headers: { Accept: 'application/xml' } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.text();
      })
      .then(function (xml) {
        return viewer.importXML(xml);
      })
      .then(function () {
        var canvas = viewer.get('canvas');
        var registry = viewer.get('elementRegistry');
        canvas.zoom('fit-viewport');
        [['completed', 'state-completed'], ['active', 'state-active'], ['overdue', 'state-overdue']].forEach(function (pair) {
          ids(element, pair[0]).forEach(function (id) {
            if (registry.get(id)) {
              canvas.addMarker(id, pair[1]);
            }
          });
        });
      })
      .catch(function () {
        element.textContent = element.getAttribute('data-error');
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll('.diagram[data-src]'), draw);
}());
