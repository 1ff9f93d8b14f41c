// Progressive enhancement only: every page works without JavaScript (the content security policy allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Body maps: clicking a region toggles the checkbox of the same region code.
  document.querySelectorAll("[data-bodymap]").forEach((map) => {
    const name = map.getAttribute("data-bodymap");
    const boxes = () => document.querySelectorAll(`input[type=checkbox][name="${name}"]`);
    const sync = () => {
      boxes().forEach((box) => {
        map.querySelectorAll(`[data-region="${box.value}"]`).forEach((shape) => shape.classList.toggle("selected", box.checked));
      });
    };
    map.querySelectorAll("[data-region]").forEach((shape) => {
      shape.addEventListener("click", () => {
        const box = document.querySelector(`input[type=checkbox][name="${name}"][value="${shape.getAttribute("data-region")}"]`);
        if (box) { box.checked = !box.checked; sync(); }
      });
    });
    boxes().forEach((box) => {
      box.addEventListener("change", sync);
      // Keyboard: the region of the focused box is outlined on the drawing.
      const mark = (on) => map.querySelectorAll(`[data-region="${box.value}"]`).forEach((shape) => shape.classList.toggle("focus", on));
      box.addEventListener("focus", () => mark(true));
      box.addEventListener("blur", () => mark(false));
    });
    sync();
  });
  // The main menu: always open on a wide screen, folded on a phone (for browsers whose CSS cannot show a closed
  // <details>'s content; the breakpoint is the one in app.css).
  const wide = window.matchMedia("(min-width: 64rem)");
  const fitMenus = () => document.querySelectorAll("details[data-menu]").forEach((menu) => { menu.open = wide.matches; });
  fitMenus();
  wide.addEventListener("change", fitMenus);
  // Forms that must not be sent twice: disable the submit button after the first click.
  document.querySelectorAll("form[data-once]").forEach((form) => {
    form.addEventListener("submit", () => {
      form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
    });
  });
});
