// Scheduling pages, progressive enhancement only: everything works without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The calendar's "Go to date": show the chosen day as soon as it is picked.
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    form.querySelectorAll("input[type=date]").forEach((input) => {
      input.addEventListener("change", () => { if (input.value) form.submit(); });
    });
  });
  // Overbooking (owner only): the reason field shows once "Overbook deliberately" is ticked.
  document.querySelectorAll("[data-overbook]").forEach((box) => {
    const check = box.querySelector("input[type=checkbox]");
    if (!check) return;
    const reason = box.querySelector("[data-overbook-reason] textarea");
    const sync = () => {
      const hasText = reason && reason.value.trim() !== "";
      box.classList.toggle("collapsed", !check.checked && !hasText);
    };
    check.addEventListener("change", sync);
    sync();
  });
});
