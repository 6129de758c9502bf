// Checks typed ticket codes before the form is sent, with the same rule as the server
// (licentia.formats.tickets): Crockford base-32, 25 symbols, the last a check symbol
// over GF(32) with x^5 + x^2 + 1. The server checks again; this only saves a trip.
(function () {
  "use strict";
  var ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  var ALIASES = { O: "0", I: "1", L: "1" };

  function timesX(value) {
    value <<= 1;
    return value & 32 ? value ^ 37 : value;
  }

  function problem(text, messages) {
    var raw = "";
    for (var i = 0; i < text.length; i++) {
      var c = text[i].toUpperCase();
      if (c === "-" || c === " ") continue;
      raw += ALIASES[c] || c;
    }
    for (var j = 0; j < raw.length; j++) {
      if (ALPHABET.indexOf(raw[j]) < 0) {
        return messages.symbol.replace("{n}", j + 1).replace("{c}", raw[j]);
      }
    }
    if (raw.length !== 25) return messages.length.replace("{n}", raw.length);
    var total = 0;
    for (var k = 0; k < raw.length; k++) total = timesX(total) ^ ALPHABET.indexOf(raw[k]);
    return total === 0 ? null : messages.check;
  }

  function check(form) {
    var area = form.querySelector("textarea[name=codes]");
    var out = form.querySelector("#f-codes-problem");
    var messages = JSON.parse(out.getAttribute("data-messages"));
    var lines = area.value.split(/[\n,;]+/).map(function (l) { return l.trim(); });
    var found = [];
    lines.filter(Boolean).forEach(function (line, index) {
      var said = problem(line, messages);
      if (said) found.push((lines.filter(Boolean).length > 1 ? messages.line.replace("{n}", index + 1) + " " : "") + said);
    });
    out.textContent = found.length ? "TICKET_CODE_INVALID " + found.join(" ") : "";
    area.setAttribute("aria-invalid", found.length ? "true" : "false");
    return found.length === 0;
  }

  document.querySelectorAll("form[data-ticket-codes]").forEach(function (form) {
    var out = form.querySelector("#f-codes-problem");
    if (!out) return;
    form.addEventListener("submit", function (event) {
      if (!check(form)) {
        event.preventDefault();
        form.querySelector("textarea[name=codes]").focus();
      }
    });
  });
})();
