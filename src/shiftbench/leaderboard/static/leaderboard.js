// shiftbench leaderboard: sortable tables (click a column head), text filters and facet selects. No dependencies.
"use strict";

(function () {
  // The value a cell sorts by: its data-sort attribute when present, else its text.
  function sortValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }

  function compareRows(index, numeric, ascending) {
    var sign = ascending ? 1 : -1;
    return function (a, b) {
      var x = sortValue(a, index), y = sortValue(b, index);
      if (numeric) {
        var fx = x === "" ? NaN : parseFloat(x), fy = y === "" ? NaN : parseFloat(y);
        var nx = isNaN(fx), ny = isNaN(fy);
        if (nx || ny) {
          // missing values always go last, whatever the direction
          if (nx && ny) return a._order - b._order;
          return nx ? 1 : -1;
        }
        if (fx !== fy) return sign * (fx - fy);
      } else {
        var c = x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
        if (c !== 0) return sign * c;
      }
      return a._order - b._order; // stable: ties keep the page's order
    };
  }

  function sortBy(table, th) {
    var heads = Array.prototype.slice.call(th.parentNode.children);
    var index = heads.indexOf(th);
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var first = th.getAttribute("data-first") || (numeric ? "descending" : "ascending");
    var next = current === "ascending" ? "descending" : current === "descending" ? "ascending" : first;
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", next);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(compareRows(index, numeric, next === "ascending"));
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r, i) { r._order = i; });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.classList.add("sort");
      th.tabIndex = 0;
      th.title = (th.title ? th.title + " — " : "") + "click to sort";
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  }

  // The items a filter or facet acts on: a table's body rows, or the <section> children of a container.
  function items(target) {
    if (target.tBodies && target.tBodies.length) return Array.prototype.slice.call(target.tBodies[0].rows);
    return Array.prototype.slice.call(target.querySelectorAll(":scope > section"));
  }

  // Show an item when it matches the text filter and every facet (select) aimed at its container.
  function refresh(target) {
    var input = document.querySelector('input.filter[data-filter-for="' + target.id + '"]');
    var terms = input ? input.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    var facets = Array.prototype.slice.call(document.querySelectorAll('select[data-facet-for="' + target.id + '"]'));
    var all = items(target), shown = 0;
    all.forEach(function (item) {
      var text = item.textContent.toLowerCase();
      var match = terms.every(function (t) { return text.indexOf(t) !== -1; }) && facets.every(function (s) {
        return !s.value || item.getAttribute("data-" + s.getAttribute("data-facet")) === s.value;
      });
      item.hidden = !match;
      if (match) shown += 1;
    });
    var count = document.querySelector('[data-count-for="' + target.id + '"]');
    var filtered = terms.length || facets.some(function (s) { return s.value; });
    if (count) count.textContent = filtered ? shown + " of " + all.length + " shown" : all.length + " rows";
  }

  function applyFilter(control) {
    var id = control.getAttribute("data-filter-for") || control.getAttribute("data-facet-for");
    var target = document.getElementById(id);
    if (target) refresh(target);
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    Array.prototype.forEach.call(document.querySelectorAll("input.filter"), function (input) {
      input.addEventListener("input", function () { applyFilter(input); });
      applyFilter(input);
    });
    Array.prototype.forEach.call(document.querySelectorAll("select[data-facet-for]"), function (select) {
      select.addEventListener("change", function () { applyFilter(select); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
