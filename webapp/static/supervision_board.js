// Draw the supervisor's board charts with Chart.js (served by the app) from the JSON the page embeds.
// The tables next to each chart hold the same figures: without this script the page loses nothing.
(function () {
  'use strict';

  var source = document.getElementById('board-charts');
  if (!source || typeof window.Chart === 'undefined') {
    return;
  }
  var specs;
  try {
    specs = JSON.parse(source.textContent);
  } catch (error) {
    return;
  }

  function options(spec) {
    var result = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: spec.type === 'doughnut' || Boolean(spec.stacked) } }
    };
    if (spec.type === 'bar') {
      var value = { beginAtZero: true, stacked: Boolean(spec.stacked) };
      if (spec.percent) {
        value.max = 100;
        value.ticks = { callback: function (tick) { return tick + ' %'; } };
      } else {
        value.ticks = { precision: 0 };
      }
      result.indexAxis = spec.horizontal ? 'y' : 'x';
      result.scales = spec.horizontal
        ? { x: value, y: { stacked: Boolean(spec.stacked) } }
        : { y: value, x: { stacked: Boolean(spec.stacked) } };
    }
    return result;
  }

  Array.prototype.forEach.call(document.querySelectorAll('canvas[data-chart]'), function (canvas) {
    var spec = specs[canvas.getAttribute('data-chart')];
    if (!spec || !spec.labels.length) {
      return;
    }
    var rows = spec.horizontal ? spec.labels.length : 0;
    if (rows > 8) {
      canvas.parentNode.style.height = (rows * 1.6 + 4) + 'rem';
    }
    new window.Chart(canvas, { type: spec.type, data: { labels: spec.labels, datasets: spec.datasets }, options: options(spec) });
  });
}());
