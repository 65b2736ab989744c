"use strict";
// The sandbox DID page: a button fills a delivery URL with a configuration's and enables it.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll(".sandbox-fill")) {
    button.addEventListener("click", () => {
      const field = document.getElementById(button.dataset.target);
      const enabled = document.getElementById(button.dataset.enable);
      if (field) { field.value = button.dataset.value; }
      if (enabled) { enabled.checked = true; }
    });
  }
});
