// Progressive enhancement for the course pages; every page works without it (no inline script is allowed).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Session note: show tension/pain rows only for treated regions (and rows already filled in).
  const table = document.querySelector("[data-chart]");
  if (table) {
    const rows = table.querySelectorAll("[data-region-row]");
    const sync = () => {
      rows.forEach((row) => {
        const code = row.getAttribute("data-region-row");
        const box = document.querySelector(`input[type=checkbox][name="treated"][value="${code}"]`);
        const filled = Array.from(row.querySelectorAll("input")).some((i) => i.value !== "");
        const treated = box ? box.checked : false;
        row.classList.toggle("courses-treated", treated);
        row.classList.toggle("courses-hidden", !treated && !filled);
      });
    };
    document.querySelectorAll('input[type=checkbox][name="treated"]').forEach((b) => b.addEventListener("change", sync));
    document.querySelectorAll("[data-bodymap] [data-region]").forEach((s) => s.addEventListener("click", () => setTimeout(sync, 0)));
    sync();
  }
  // Health update: hide the list of findings while "Nothing new" is chosen (unless something is ticked).
  const list = document.querySelector("[data-new-findings]");
  if (list) {
    const radios = document.querySelectorAll('input[name="anything_new"]');
    const sync = () => {
      const nothing = Array.from(radios).some((r) => r.checked && r.value === "no");
      const ticked = list.querySelector('input[name="findings"]:checked') !== null;
      list.classList.toggle("courses-hidden", nothing && !ticked);
    };
    radios.forEach((r) => r.addEventListener("change", sync));
    sync();
  }
});
