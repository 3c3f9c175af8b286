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
