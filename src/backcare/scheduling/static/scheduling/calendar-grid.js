// The calendar's time grid (FullCalendar, vendored in vendor/fullcalendar/): appointments as blocks, a click on an
// empty time opens the booking form with that time, a drag moves an appointment through the same checks as the move
// page. Progressive enhancement: without JavaScript (or if FullCalendar fails to load) the HTML table stays.
// Everything the server says is shown as text (FullCalendar writes titles with textContent; so does this file).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const wrap = document.querySelector("[data-time-grid]");
  const configEl = document.getElementById("cal-grid-config");
  if (!wrap || !configEl || typeof FullCalendar === "undefined") return;
  const config = JSON.parse(configEl.textContent);
  const mount = wrap.querySelector("[data-grid-mount]");
  const note = wrap.querySelector("[data-grid-message]");
  const csrf = wrap.querySelector("input[name=csrfmiddlewaretoken]");
  const narrow = window.matchMedia("(max-width: 40rem)").matches;

  const say = (text, problem) => {
    note.textContent = text;
    note.classList.toggle("problem", Boolean(problem));
    note.setAttribute("role", problem ? "alert" : "status");
    note.hidden = !text;
  };

  // One therapist or one room at a time, or everyone.
  const picker = document.createElement("select");
  picker.id = "cal-grid-show";
  const label = document.createElement("label");
  label.htmlFor = picker.id;
  label.textContent = "Show ";
  const option = (value, text, group) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    (group || picker).appendChild(o);
  };
  option("", "Everyone");
  [["therapist", "Therapists", config.therapists], ["room", "Rooms", config.rooms]].forEach(([kind, title, list]) => {
    if (!list.length) return;
    const group = document.createElement("optgroup");
    group.label = title;
    list.forEach((item) => option(`${kind}:${item.id}`, item.name, group));
    picker.appendChild(group);
  });
  const pickerRow = document.createElement("p");
  pickerRow.className = "cal-grid-picker";
  pickerRow.append(label, picker);
  wrap.insertBefore(pickerRow, mount);

  const chosen = () => {
    const [kind, id] = picker.value.split(":");
    return kind ? { [kind]: id } : {};
  };
  // FullCalendar without a time-zone plugin keeps the clinic's wall-clock time in the UTC fields of its dates.
  const pad = (n) => String(n).padStart(2, "0");
  const day = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;

  const calendar = new FullCalendar.Calendar(mount, {
    timeZone: config.timeZone,
    initialDate: config.date,
    initialView: narrow ? "listDay" : config.view === "week" ? "timeGridWeek" : "timeGridDay",
    headerToolbar: narrow
      ? { left: "prev,next", center: "title", right: "today" }
      : { left: "prev,next today", center: "title", right: "timeGridDay,timeGridWeek,listDay" },
    // Words rather than FullCalendar's icon font, which comes as a data: URL the site's policy does not load.
    buttonIcons: false,
    buttonText: { prev: "← Previous", next: "Next →", today: "Today", day: "Day", week: "Week", list: "List" },
    firstDay: 1,
    height: "auto",
    slotMinTime: "07:00:00",
    slotMaxTime: "21:00:00",
    slotDuration: "00:15:00",
    slotLabelInterval: "01:00",
    slotLabelFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    nowIndicator: false,
    editable: false, // each appointment says whether it may be moved
    eventDurationEditable: false, // an appointment lasts as long as its service
    eventOverlap: true, // the server decides what conflicts (409)
    // aria-busy while the appointments load: screen readers wait for them, and so do the browser tests.
    loading: (busy) => wrap.setAttribute("aria-busy", busy ? "true" : "false"),
    events: {
      url: config.eventsUrl,
      extraParams: () => ({ ...chosen(), cancelled: config.cancelled ? "1" : "" }),
      failure: () => say("The calendar could not be loaded. Reload the page, or use the table below.", true),
    },
    eventDidMount: (info) => {
      const p = info.event.extendedProps;
      const parts = [p.client, p.service, p.therapist, p.room].filter(Boolean);
      if (p.holdUntil) parts.push(`hold until ${p.holdUntil}`);
      if (p.cancelReason) parts.push(`cancelled: ${p.cancelReason}`);
      if (p.overbookReason) parts.push(`overbooked: ${p.overbookReason}`);
      if (parts.length) info.el.title = parts.join(", ");
    },
    dateClick: (info) => {
      if (info.allDay || !config.bookUrl) return;
      const params = new URLSearchParams({ day: day(info.date), time: time(info.date), ...chosen() });
      window.location.assign(`${config.bookUrl}?${params}`);
    },
    eventDrop: (info) => {
      const p = info.event.extendedProps;
      if (!p.moveUrl) {
        info.revert();
        return;
      }
      const body = new URLSearchParams({
        day: day(info.event.start),
        time: time(info.event.start),
        therapist: p.therapistId,
        room: p.roomId,
      });
      say("Moving…", false);
      fetch(p.moveUrl, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf ? csrf.value : "", Accept: "application/json" },
      })
        .then((response) => response.json().then((data) => ({ ok: response.ok, data })))
        .then(({ ok, data }) => {
          if (!ok) info.revert();
          say(data.message || (ok ? "Moved." : "Not moved."), !ok);
          calendar.refetchEvents();
        })
        .catch(() => {
          info.revert();
          say("Not moved: the clinic's server could not be reached. Try again.", true);
        });
    },
  });
  picker.addEventListener("change", () => calendar.refetchEvents());
  wrap.setAttribute("aria-busy", "true");
  wrap.hidden = false;
  document.querySelectorAll("[data-grid-fallback]").forEach((el) => { el.hidden = true; });
  calendar.render();
});
