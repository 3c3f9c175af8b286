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
