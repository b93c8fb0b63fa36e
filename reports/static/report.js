/* dlrosetta report: draw the embedded Plotly figures, drive the idiom guide. No network. */
(function () {
  "use strict";

  var CONFIG = {
    responsive: true, displaylogo: false, typesetMath: false, showLink: false, showTips: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
    toImageButtonOptions: { format: "png", scale: 2 }
  };

  function drawCharts() {
    var drawn = 0, failed = 0;
    var nodes = document.querySelectorAll("[data-figure]");
    nodes.forEach(function (el) {
      try {
        var fig = JSON.parse(document.getElementById(el.getAttribute("data-figure")).textContent);
        el.style.minHeight = "";
        Plotly.newPlot(el, fig.data, fig.layout, CONFIG);
        el.setAttribute("data-drawn", "1");
        drawn += 1;
      } catch (err) {
        failed += 1;
        el.classList.add("chart-error");
        el.textContent = "This chart could not be drawn: " + err;
        console.error("chart " + el.id + " failed:", err);
      }
    });
    document.body.setAttribute("data-charts", String(nodes.length));
    document.body.setAttribute("data-charts-drawn", String(drawn));
    document.body.setAttribute("data-charts-failed", String(failed));
  }

  function selectGuide(task) {
    document.querySelectorAll(".guide-tab").forEach(function (tab) {
      tab.setAttribute("aria-selected", tab.getAttribute("data-guide") === task ? "true" : "false");
    });
    document.querySelectorAll(".guide").forEach(function (g) {
      g.hidden = g.getAttribute("data-guide") !== task;
    });
  }

  function updateColumns(guide) {
    var shown = {};
    var count = 0;
    guide.querySelectorAll(".guide-picker input[data-col]").forEach(function (box) {
      shown[box.getAttribute("data-col")] = box.checked;
      if (box.checked) { count += 1; }
    });
    guide.querySelectorAll(".code-cell[data-col], .code-head[data-col]").forEach(function (cell) {
      cell.hidden = !shown[cell.getAttribute("data-col")];
    });
    guide.style.setProperty("--cols", String(Math.max(count, 1)));
    guide.setAttribute("data-shown", Object.keys(shown).filter(function (k) { return shown[k]; }).join(","));
  }

  function initGuide() {
    document.querySelectorAll(".guide-tab").forEach(function (tab) {
      tab.addEventListener("click", function () { selectGuide(tab.getAttribute("data-guide")); });
    });
    document.querySelectorAll(".guide").forEach(function (guide) {
      guide.querySelectorAll(".guide-picker input[data-col]").forEach(function (box) {
        box.addEventListener("change", function () { updateColumns(guide); });
      });
      updateColumns(guide);
    });
  }

  function start() {
    initGuide();
    if (typeof Plotly === "undefined") {
      console.error("plotly.js is missing from this report");
      return;
    }
    drawCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
