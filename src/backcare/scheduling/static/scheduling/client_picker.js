// Finding a client by name: progressive enhancement only (without JavaScript the search button does the same).
// While typing, the matches are fetched from the same page and shown in place.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-client-picker] form[role=search]").forEach((form) => {
    const input = form.querySelector("input[type=search]");
    const results = form.parentElement.querySelector("[data-client-results]");
    if (!input || !results) return;
    let timer = null;
    let latest = 0;
    input.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(async () => {
        if (input.value.trim() === "") return;
        const ask = ++latest;
        const url = form.action.split("?")[0] + "?" + new URLSearchParams(new FormData(form)).toString();
        try {
          const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
          if (!response.ok || ask !== latest) return;
          const page = new DOMParser().parseFromString(await response.text(), "text/html");
          const fresh = page.querySelector("[data-client-results]");
          if (fresh) results.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
        } catch (error) {
          // The search button still works.
        }
      }, 250);
    });
  });
});
