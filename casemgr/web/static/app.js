// Sends the CSRF token with every htmx request (no inline scripts: CSP forbids them).
document.addEventListener("htmx:configRequest", function (evt) {
  var token = document.body.getAttribute("data-csrf");
  if (token) { evt.detail.headers["X-CSRF-Token"] = token; }
});
