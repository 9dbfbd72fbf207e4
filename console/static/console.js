// amsm console: the live view. One EventSource per page; the server sends the page's
// live part drawn anew whenever the pair changed (console/pairs.py: one subscription per
// pair, shared by every browser), laid on what the page shows so that only what changed
// is redrawn. What a person is typing survives the redraw.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-events");
  var live = document.querySelector("[data-live]");
  if (!url || !live || !window.EventSource) { return; }

  function key(el) {
    var form = el.form;
    var hidden = form ? form.querySelector("input[name=step]") : null;
    var client = form ? form.querySelector("input[name=client]") : null;
    var action = form ? form.querySelector("input[name=action]") : null;
    return [form ? form.getAttribute("action") : "", hidden ? hidden.value : "",
            client ? client.value : "", action ? action.value : "", el.name,
            el.type === "checkbox" ? el.value : ""].join("|");
  }

  function keep() {
    var kept = {};
    live.querySelectorAll("input:not([type=hidden])").forEach(function (el) {
      if (el.type === "checkbox") { if (!el.disabled) { kept[key(el)] = el.checked; } }
      else if (el.value) { kept[key(el)] = el.value; }
    });
    var focused = document.activeElement && live.contains(document.activeElement)
      ? key(document.activeElement) : null;
    var open = [];
    live.querySelectorAll("details[open]").forEach(function (d, i) { open.push(i); });
    return { kept: kept, focused: focused, open: open };
  }

  function restore(state) {
    live.querySelectorAll("input:not([type=hidden])").forEach(function (el) {
      var k = key(el);
      if (k in state.kept) {
        if (el.type === "checkbox") { el.checked = state.kept[k]; } else { el.value = state.kept[k]; }
      }
      if (state.focused === k) { el.focus(); }
    });
    var all = live.querySelectorAll("details");
    state.open.forEach(function (i) { if (all[i]) { all[i].open = true; } });
  }

  // The new drawing laid on the old one: what did not change is left as it is (a table
  // of 184 clients where one client moved redraws one row, not the table), what did is
  // replaced at the first element that differs in kind, id or children.
  function morph(old, neu) {
    if (old.isEqualNode(neu)) { return; }
    if (old.nodeType !== 1 || old.nodeName !== neu.nodeName || old.id !== neu.id ||
        old.childNodes.length !== neu.childNodes.length) {
      if (old.nodeType === 3 && neu.nodeType === 3) { old.nodeValue = neu.nodeValue; return; }
      old.parentNode.replaceChild(neu, old);
      return;
    }
    Array.prototype.slice.call(old.attributes).forEach(function (a) {
      if (!neu.hasAttribute(a.name)) { old.removeAttribute(a.name); }
    });
    Array.prototype.slice.call(neu.attributes).forEach(function (a) {
      if (old.getAttribute(a.name) !== a.value) { old.setAttribute(a.name, a.value); }
    });
    var was = Array.prototype.slice.call(old.childNodes);
    var now = Array.prototype.slice.call(neu.childNodes);
    for (var i = 0; i < was.length; i++) { morph(was[i], now[i]); }
  }

  var source = new EventSource(url);
  source.addEventListener("update", function (ev) {
    var data = JSON.parse(ev.data);
    var state = keep();
    var next = live.cloneNode(false);
    next.innerHTML = data.html;
    if (next.childNodes.length === live.childNodes.length) {
      var was = Array.prototype.slice.call(live.childNodes);
      var now = Array.prototype.slice.call(next.childNodes);
      for (var i = 0; i < was.length; i++) { morph(was[i], now[i]); }
    } else {
      live.innerHTML = data.html;
    }
    live.setAttribute("data-version", data.version);
    restore(state);
  });
  source.onerror = function () { live.setAttribute("data-stale", "true"); };
  source.onopen = function () { live.removeAttribute("data-stale"); };
})();
