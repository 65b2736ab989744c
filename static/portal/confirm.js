"use strict";
// A form with data-confirm asks before it is sent; cancelling leaves the page as it was.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
