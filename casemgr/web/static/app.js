// Sends the CSRF token with every htmx request (no inline scripts: CSP forbids them).
document.addEventListener("htmx:configRequest", function (evt) {
  var token = document.body.getAttribute("data-csrf");
  if (token) { evt.detail.headers["X-CSRF-Token"] = token; }
});

// htmx does not swap error responses: show their message in the page's alert region instead.
document.addEventListener("htmx:responseError", function (evt) {
  var box = document.getElementById("htmx-error");
  if (!box) { return; }
  var text = "The request failed (" + evt.detail.xhr.status + ").";
  try {
    var body = JSON.parse(evt.detail.xhr.responseText);
    if (body && body.detail) { text = body.detail; }
  } catch (e) { /* not JSON: keep the generic message */ }
  box.textContent = text;  // textContent: server text is never parsed as HTML
  box.hidden = false;
});

// A click on "line N" in the problem list puts the cursor on that line of the editor.
document.addEventListener("click", function (evt) {
  var link = evt.target.closest ? evt.target.closest("a[data-line]") : null;
  var editor = document.getElementById("editor");
  if (!link || !editor) { return; }
  var n = parseInt(link.getAttribute("data-line"), 10);
  var lines = editor.value.split("\n");
  if (!(n >= 1 && n <= lines.length)) { return; }
  evt.preventDefault();
  var start = 0;
  for (var i = 0; i < n - 1; i++) { start += lines[i].length + 1; }
  editor.focus();
  editor.setSelectionRange(start, start + lines[n - 1].length);
  // Scroll the selected line into view: roughly line height times line index.
  var lh = parseFloat(getComputedStyle(editor).lineHeight) || 20;
  editor.scrollTop = Math.max(0, (n - 3) * lh);
});

// ---- Workspace (issue 20): bulk bar, selection, keyboard shortcuts, focus after htmx swaps. ----

function qsa(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

// Bulk bar: show only the inputs the chosen action uses; keep the "N selected" count current.
function syncBulkBar() {
  var action = document.getElementById("bulk-action");
  if (!action) { return; }
  qsa("#bulk-form [data-for]").forEach(function (el) {
    var on = el.getAttribute("data-for").split(" ").indexOf(action.value) >= 0;
    el.hidden = !on;
    el.disabled = !on;
  });
  var n = qsa('input[name="case"][form="bulk-form"]:checked').length;
  var count = document.getElementById("bulk-count");
  if (count) { count.textContent = n + " selected"; }
  qsa("#queue-table tbody tr").forEach(function (tr) {
    var box = tr.querySelector('input[name="case"]');
    tr.classList.toggle("selected", !!(box && box.checked));
  });
}
document.addEventListener("change", function (evt) {
  var t = evt.target;
  if (t && t.id === "select-all") {
    qsa('input[name="case"][form="bulk-form"]').forEach(function (b) { b.checked = t.checked; });
  }
  if (t && (t.id === "bulk-action" || t.id === "select-all" || t.name === "case")) { syncBulkBar(); }
});
document.addEventListener("DOMContentLoaded", syncBulkBar);

// A click on a menu item closes the other open row menus (one menu open at a time).
document.addEventListener("click", function (evt) {
  var inMenu = evt.target.closest ? evt.target.closest("details.menu") : null;
  qsa("details.menu[open]").forEach(function (d) { if (d !== inMenu) { d.open = false; } });
  var help = evt.target.closest ? evt.target.closest("[data-shortcut-help]") : null;
  if (help) { evt.preventDefault(); toggleHelp(); }
});

function rows() { return qsa("#queue-table tbody tr[data-case-id]"); }
function currentRow() { return document.querySelector("#queue-table tbody tr.kb-current"); }

function setCurrent(tr) {
  rows().forEach(function (r) { r.classList.remove("kb-current"); });
  if (!tr) { return; }
  tr.classList.add("kb-current");
  lastRowId = tr.id;
  var link = tr.querySelector("a.case-link");
  if (link) { link.focus(); }
  tr.scrollIntoView({ block: "nearest" });
  try { sessionStorage.setItem("kb-row", tr.id); } catch (e) { /* storage off: no memory */ }
}

function move(delta) {
  var all = rows();
  if (!all.length) { return; }
  var i = all.indexOf(currentRow());
  var next = i < 0 ? (delta > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, i + delta));
  setCurrent(all[next]);
}

function toggleHelp(force) {
  var box = document.getElementById("shortcut-help");
  if (!box) { return; }
  box.hidden = force === undefined ? !box.hidden : !force;
}

function typing(el) {
  if (!el || !el.tagName) { return false; }
  var tag = el.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
}

function focusField(id) {
  var el = document.getElementById(id);
  if (!el) { return false; }
  var details = el.closest ? el.closest("details") : null;
  if (details) { details.open = true; }
  el.focus();
  if (el.scrollIntoView) { el.scrollIntoView({ block: "center" }); }
  return true;
}

function submitForm(form) {
  if (!form) { return; }
  if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
}

document.addEventListener("keydown", function (evt) {
  if (evt.key === "Escape") { toggleHelp(false); return; }
  // Ctrl/Cmd+Enter in a reply or note box sends it (the usual helpdesk key).
  if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey) && evt.target.tagName === "TEXTAREA" && evt.target.form) {
    evt.preventDefault();
    submitForm(evt.target.form);
    return;
  }
  if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) { return; }
  var tr = currentRow();
  var onCase = !!document.getElementById("case-page");
  switch (evt.key) {
    case "j": move(1); break;
    case "k": move(-1); break;
    case "o":
    case "Enter":
      if (tr && !onCase) { window.location.href = tr.getAttribute("data-href"); } else { return; }
      break;
    case "x":
      if (tr) { var box = tr.querySelector('input[name="case"]'); if (box) { box.checked = !box.checked; syncBulkBar(); } }
      break;
    case "a":
      if (onCase) { submitForm(document.getElementById("claim-form")); }
      else if (tr) { submitForm(tr.querySelector("form.claim-form")); }
      break;
    case "r": if (!focusField("reply-body")) { return; } break;
    case "n": if (!focusField("note-body")) { return; } break;
    case "m": if (!focusField("macro-select")) { return; } break;
    case "s": if (!focusField("transition-reason")) { return; } break;
    case "/":
      if (!focusField("f-q")) { window.location.href = "/queue?focus=search"; }
      break;
    case "?": toggleHelp(); break;
    default: return;
  }
  evt.preventDefault();
});

// After htmx swaps a queue row, the keyboard stays on that row (the old element, and the form that made the
// request, are gone: htmx:load fires on the new row and bubbles, the swap events do not reach the document).
var lastRowId = null;
document.addEventListener("htmx:load", function (evt) {
  var el = evt.target;
  if (!el || !el.id || el.id.indexOf("case-row-") !== 0) { return; }
  if (el.id === lastRowId) { setCurrent(el); }
  syncBulkBar();
});

document.addEventListener("DOMContentLoaded", function () {
  if (new URLSearchParams(window.location.search).get("focus") === "search") { focusField("f-q"); }
  if (!rows().length) { return; }
  var remembered = null;
  try { remembered = sessionStorage.getItem("kb-row"); } catch (e) { remembered = null; }
  var tr = remembered ? document.getElementById(remembered) : null;
  if (tr) { tr.classList.add("kb-current"); lastRowId = tr.id; }
});

// Case page tabs (Conversation / Audit timeline): plain links work without script; this keeps them in-page.
document.addEventListener("click", function (evt) {
  var tab = evt.target.closest ? evt.target.closest(".case-tabs a[data-tab]") : null;
  if (!tab) { return; }
  evt.preventDefault();
  qsa(".case-tabs a[data-tab]").forEach(function (a) {
    var on = a === tab;
    a.setAttribute("aria-selected", on ? "true" : "false");
    var panel = document.getElementById(a.getAttribute("data-tab"));
    if (panel) { panel.hidden = !on; }
  });
});

// "Use this draft": the AI's draft goes into the reply box, marked as an AI draft; the agent edits and sends it.
document.addEventListener("click", function (evt) {
  var btn = evt.target.closest ? evt.target.closest("button.use-draft") : null;
  if (!btn) { return; }
  var box = document.getElementById(btn.getAttribute("data-draft-target"));
  if (!box) { return; }
  box.value = btn.getAttribute("data-draft-text");
  var mark = document.getElementById("ai-draft-mark");
  if (mark) { mark.hidden = false; }
  var form = box.form;
  if (form && !form.querySelector('input[name="ai_decision"]')) {
    var hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "ai_decision"; hidden.value = btn.getAttribute("data-decision");
    form.appendChild(hidden);
  }
  box.focus();
});

// A macro preview arrived: the keyboard goes to its reply box, ready to edit.
document.addEventListener("htmx:load", function (evt) {
  if (evt.target && evt.target.id === "macro-preview") {
    var box = document.getElementById("macro-reply");
    if (box) { box.focus(); }
  }
});
