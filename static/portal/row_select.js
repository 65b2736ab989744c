"use strict";
// In a list with actions, a click anywhere in a row that is not a link, a field or a button
// toggles the row's checkbox, as in a mail client; selecting text with the mouse does not.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("result_list");
  if (!list) return;
  list.addEventListener("click", (event) => {
    if (event.target.closest("a, input, button, select, textarea, label, [contenteditable]")) return;
    if (String(window.getSelection())) return;
    const row = event.target.closest("tbody tr");
    const box = row && row.querySelector("input.action-select");
    // A native click: the admin's own script highlights the row and counts the selection.
    if (box && !box.disabled) box.click();
  });
});
