// Cargobay console: small enhancements on pages that work without JavaScript.
// The live registry-name check, copy buttons, typed confirmation, and focus on error summaries.
(function () {
  "use strict";

  function liveNameCheck(input) {
    var status = document.getElementById("name-status");
    var timer = null;
    var asked = "";
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var name = input.value.trim();
      if (!name) { status.textContent = ""; status.className = "name-status"; return; }
      timer = setTimeout(function () {
        asked = name;
        fetch(input.dataset.nameCheck + "?name=" + encodeURIComponent(name), {
          headers: { "Accept": "application/json" }, credentials: "same-origin"
        }).then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        }).then(function (answer) {
          if (asked !== input.value.trim()) { return; }
          status.textContent = answer.message;
          status.className = "name-status " + answer.state;
        }).catch(function () {
          status.textContent = "";
          status.className = "name-status";
        });
      }, 250);
    });
  }

  function copyButton(button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var said = document.querySelector(".copy-status");
      function done(ok) {
        if (said) { said.textContent = ok ? "Copied to the clipboard." : "Select the text and copy it."; }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(false); });
      } else {
        field.select();
        try { done(document.execCommand("copy")); } catch (e) { done(false); }
      }
    });
  }

  function typedConfirmation(input) {
    var button = input.form.querySelector("[data-confirm-button]");
    function update() { button.disabled = input.value.trim() !== input.dataset.confirm; }
    input.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-name-check]").forEach(liveNameCheck);
    document.querySelectorAll("[data-copy]").forEach(copyButton);
    document.querySelectorAll("[data-confirm]").forEach(typedConfirmation);
    var first = document.querySelector("[data-focus]");
    if (first) { first.focus(); }
  });
})();
