/* geo-crm report pages: Chart.js charts from the JSON embedded in the page.
 * Data only reaches the DOM through Chart.js (canvas) and textContent. */
(function () {
  'use strict';
  var holder = document.getElementById('report-data');
  if (!holder) { return; }
  var data = JSON.parse(holder.textContent);
  var charts = data.charts || {};
  var tables = data.tables || {};
  var palette = ['#1f6feb', '#2e7d32', '#b26a00', '#c62828', '#6a1b9a', '#00838f', '#5d4037', '#546e7a',
                 '#ad1457', '#9e9d24', '#283593', '#ef6c00'];
  var segColors = {grow: '#2e7d32', maintain: '#1f6feb', develop: '#b26a00', drop: '#9e9e9e'};
  if (window.Chart) {
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
  }

  function rows(name) { return (tables[name] && tables[name].rows) || []; }
  function bar(labels, datasets, opts) {
    return {type: 'bar', data: {labels: labels, datasets: datasets}, options: opts || {}};
  }
  function ds(label, values, color) { return {label: label, data: values, backgroundColor: color || palette[0]}; }
  function doughnut(c) {
    return {type: 'doughnut', data: {labels: c.labels, datasets: [{data: c.values, backgroundColor: palette}]}};
  }
  var pct = {scales: {y: {ticks: {callback: function (v) { return Math.round(v * 100) + '%'; }}}}};

  var builders = {
    contribution: {
      lorenz: function () {
        var pts = (charts.lorenz || []).map(function (p) { return {x: p[0], y: p[1]}; });
        return {type: 'scatter', data: {datasets: [
          {label: 'Lorenz curve', data: pts, showLine: true, pointRadius: 0, borderColor: palette[0]},
          {label: 'Equality', data: [{x: 0, y: 0}, {x: 1, y: 1}], showLine: true, pointRadius: 0,
           borderColor: '#999', borderDash: [4, 4]}]},
          options: {scales: {x: {min: 0, max: 1, title: {display: true, text: 'share of customers'}},
                             y: {min: 0, max: 1, title: {display: true, text: 'share of revenue'}}}}};
      },
      abc: function () {
        var r = rows('abc');
        return bar(r.map(function (x) { return x.abc; }),
                   [ds('share of revenue', r.map(function (x) { return x.revenue_share; }), palette[0]),
                    ds('share of customers', r.map(function (x) { return x.customer_share; }), palette[2])], pct);
      },
      regions: function () {
        var r = rows('regions').slice(0, 12);
        return bar(r.map(function (x) { return x.name; }), [ds('revenue (EUR)', r.map(function (x) { return x.revenue; }))],
                   {indexAxis: 'y'});
      }
    },
    composition: {
      level: function () { return doughnut(charts.level); },
      status: function () { return doughnut(charts.status); },
      industry: function () { return bar(charts.industry.labels, [ds('customers', charts.industry.values)]); },
      credit_rating: function () {
        return bar(charts.credit_rating.labels, [ds('customers', charts.credit_rating.values, palette[1])]);
      }
    },
    service: {
      types: function () { return bar(charts.types.labels, [ds('requests', charts.types.values)]); },
      satisfaction: function () {
        return bar(charts.satisfaction.labels, [ds('ratings', charts.satisfaction.values, palette[1])]);
      },
      trend: function () {
        return {type: 'line', data: {labels: charts.trend.labels,
          datasets: [{label: 'average rating', data: charts.trend.values, borderColor: palette[0]}]},
          options: {scales: {y: {min: 1, max: 5}}}};
      }
    },
    churn: {
      monthly: function () {
        var c = charts.monthly;
        return bar(c.labels, [ds('warnings', c.warnings, palette[2]), ds('recoveries', c.recoveries, palette[1]),
                              ds('confirmed losses', c.losses, palette[3])]);
      }
    },
    segments: {
      scatter: function () {
        var groups = {};
        (charts.scatter || []).forEach(function (p) {
          (groups[p.segment] = groups[p.segment] || []).push({x: p.x, y: p.y, name: p.name});
        });
        return {type: 'scatter', data: {datasets: Object.keys(segColors).map(function (k) {
          return {label: k, data: groups[k] || [], backgroundColor: segColors[k], pointRadius: 3};
        })}, options: {scales: {x: {title: {display: true, text: 'current value (EUR, 12 months)'}},
                                y: {title: {display: true, text: 'potential value (EUR)'}}},
                       plugins: {tooltip: {callbacks: {label: function (ctx) {
                         return ctx.raw.name + ': ' + ctx.raw.x + ' / ' + ctx.raw.y; }}}}}};
      },
      monetary: function () { return bar(charts.monetary.labels, [ds('customers', charts.monetary.values)]); }
    },
    pipeline: {
      stages: function () {
        var c = charts.stages;
        return bar(c.labels, [ds('amount (EUR)', c.amount, palette[7]), ds('weighted (EUR)', c.weighted, palette[0])]);
      },
      stage_days: function () { return bar(charts.stage_days.labels, [ds('days', charts.stage_days.values, palette[2])]); }
    }
  };

  var own = builders[data.report] || {};
  document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
    var make = own[canvas.getAttribute('data-chart')];
    if (!make || !window.Chart) { return; }
    canvas.chart = new Chart(canvas, make());
  });
  var btn = document.getElementById('print-page');
  if (btn) { btn.addEventListener('click', function () { window.print(); }); }
  document.body.setAttribute('data-report-ready', '1');
  if (data.printable) { document.body.classList.add('printable'); }
})();
