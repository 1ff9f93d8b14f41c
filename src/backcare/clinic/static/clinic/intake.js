// Progressive enhancement for the intake form: follow-up questions (where? how many weeks ago? pregnancy week)
// show only when their question is answered "Yes". Without JavaScript every follow-up stays visible.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.classList.add("js");
  const form = document.querySelector("form.intake-form");
  if (form) {
    const update = () => {
      form.querySelectorAll("[data-followup]").forEach((el) => {
        const name = el.getAttribute("data-followup");
        const yes = form.querySelector(`input[type=radio][name="${name}"][value="yes"]`);
        if (!yes) return;
        // Keep a follow-up visible when it holds an answer or a message, so nothing is hidden from the user.
        const filled = el.querySelector(".error") || Array.from(el.querySelectorAll("input")).some(
          (i) => (i.type === "checkbox" || i.type === "radio") ? i.checked : i.value.trim() !== "");
        el.classList.toggle("is-hidden", !yes.checked && !filled);
      });
    };
    form.addEventListener("change", update);
    update();
  }
  document.querySelectorAll("button[data-print]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  });
});
