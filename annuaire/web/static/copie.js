/* "Copier" buttons: copy a mailbox address to the clipboard.
   Without JavaScript the buttons stay hidden and the address is plain text
   (and a mailto: link). Where the Clipboard API is refused, fall back to a
   selected textarea and execCommand, else select the address for Ctrl+C. */
(function () {
  "use strict";

  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function selectAddress(button) {
    var address = button.parentNode.querySelector(".box-address");
    if (!address || !window.getSelection) { return; }
    var range = document.createRange();
    range.selectNodeContents(address);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function announce(button, message) {
    var status = button.parentNode.querySelector(".copy-status");
    if (status) {
      status.textContent = message;
      window.setTimeout(function () { status.textContent = ""; }, 4000);
    }
  }

  function copy(button) {
    var text = button.getAttribute("data-copy");
    var done = function () { announce(button, "Adresse copiée"); };
    var fallback = function () {
      if (legacyCopy(text)) { done(); return; }
      selectAddress(button);
      announce(button, "Copie impossible : l’adresse est sélectionnée, faites Ctrl+C");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button.copy[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function (event) { copy(event.currentTarget); });
    }
  });
})();
