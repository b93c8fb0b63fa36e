/* dlrosetta translation guide (the static site of `dlrosetta guide`): the compare and translate views of a
   task page, kept in the URL fragment so that every view has an address (see reports/guide.py):
   #<phase>, #<x>..<y>, #<phase>/<x>..<y>. No network, no library. */
(function () {
  "use strict";

  var PAIR = /^(?:([a-z][\w-]*)\/)?([a-z][\w-]*)\.\.([a-z][\w-]*)$/;

  function columns(guide) {
    return Array.prototype.map.call(guide.querySelectorAll(".code-head[data-col]"), function (el) {
      return el.getAttribute("data-col");
    });
  }

  function titleOf(guide, key) {
    var head = guide.querySelector('.code-head[data-col="' + key + '"] .code-title');
    return head ? head.textContent : key;
  }

  function checked(guide, selector) {
    return Array.prototype.filter.call(guide.querySelectorAll(selector), function (box) { return box.checked; })
      .map(function (box) { return box.getAttribute("data-col") || box.value; });
  }

  function pair(guide) {
    return [checked(guide, 'input[name="from"]')[0], checked(guide, 'input[name="to"]')[0]];
  }

  function shownKeys(guide) {
    if (guide.getAttribute("data-mode") === "translate") {
      var p = pair(guide);
      return p[0] === p[1] ? [p[0]] : p;
    }
    return checked(guide, ".guide-picker input[data-col]");
  }

  function render(guide) {
    var keys = shownKeys(guide);
    guide.querySelectorAll(".code-cell[data-col], .code-head[data-col]").forEach(function (el) {
      var i = keys.indexOf(el.getAttribute("data-col"));
      el.hidden = i < 0;
      el.style.order = i < 0 ? "" : String(i);
    });
    guide.style.setProperty("--cols", String(Math.max(keys.length, 1)));
    guide.setAttribute("data-shown", keys.join(","));
    var note = guide.querySelector(".shown-note");
    var titles = keys.map(function (k) { return titleOf(guide, k); });
    note.textContent = guide.getAttribute("data-mode") === "translate"
      ? "Translating from " + titles[0] + " to " + (titles[1] || titles[0])
      : "Showing " + (titles.join(", ") || "no column: tick one");
  }

  function setMode(guide, mode) {
    guide.setAttribute("data-mode", mode);
    guide.querySelectorAll(".view-mode").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-mode") === mode ? "true" : "false");
    });
    guide.querySelectorAll("fieldset[data-for]").forEach(function (f) {
      f.hidden = f.getAttribute("data-for") !== mode;
    });
  }

  function currentPhase() {
    var h = decodeURIComponent(location.hash.slice(1));
    var m = PAIR.exec(h);
    if (m) { return m[1] || ""; }
    return h && document.getElementById(h) && document.getElementById(h).classList.contains("phase") ? h : "";
  }

  function writeHash(guide) {
    var phase = currentPhase();
    var hash = phase;
    if (guide.getAttribute("data-mode") === "translate") {
      var p = pair(guide);
      hash = (phase ? phase + "/" : "") + p[0] + ".." + p[1];
    }
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }

  function readHash(guide) {
    var m = PAIR.exec(decodeURIComponent(location.hash.slice(1)));
    var keys = columns(guide);
    if (!m || keys.indexOf(m[2]) < 0 || keys.indexOf(m[3]) < 0) { return; }
    guide.querySelector('input[name="from"][value="' + m[2] + '"]').checked = true;
    guide.querySelector('input[name="to"][value="' + m[3] + '"]').checked = true;
    setMode(guide, "translate");
    render(guide);
    var target = m[1] && document.getElementById(m[1]);
    if (target) { target.scrollIntoView(); }
  }

  function init(guide) {
    guide.querySelectorAll(".view-mode").forEach(function (b) {
      b.addEventListener("click", function () {
        setMode(guide, b.getAttribute("data-mode"));
        render(guide);
        writeHash(guide);
      });
    });
    guide.querySelectorAll("fieldset[data-for] input").forEach(function (box) {
      box.addEventListener("change", function () { render(guide); writeHash(guide); });
      if (box.type === "checkbox") {  // Enter ticks a column too (Space does natively)
        box.addEventListener("keydown", function (e) {
          if (e.key === "Enter") { e.preventDefault(); box.click(); }
        });
      }
    });
    window.addEventListener("hashchange", function () { readHash(guide); });
    render(guide);
    readHash(guide);
  }

  function start() {
    document.querySelectorAll(".guide[data-task]").forEach(init);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
