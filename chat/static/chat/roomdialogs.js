// The room dialogs: "New room", "Rename room" and "Browse rooms", and the REST calls behind them.

import { gettext, interpolate, pgettext } from "./i18n.js";
import { apiUrl } from "./paths.js";
import { button, el, errorText } from "./render.js";

/** Call the REST API with the page's session (and its CSRF token); resolves to {ok, status, body}. */
export async function api(method, path, body) {
  const headers = { "X-CSRFToken": document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const reply = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await reply.json();
    } catch {
      // not JSON (a proxy's error page): the status tells
    }
    return { ok: reply.ok, status: reply.status, body: data };
  } catch {
    return { ok: false, status: 0, body: null };
  }
}

/** A sentence for a failed API call: the server's own detail when it has one. */
export function failureText(result) {
  if (result.status === 0) return gettext("You are offline. Try again when the connection is back.");
  if (result.body?.detail && result.body.error !== "SERVER_ERROR") return result.body.detail;
  return result.body?.error ? errorText(result.body) : gettext("Something went wrong. Try again.");
}

/** A modal <dialog> with a heading; Escape and "Close" close it, and focus goes back where it was. */
function dialog(id, heading) {
  const node = el("dialog", "room-dialog");
  node.id = id;
  const title = el("h2", "dialog-title", heading);
  title.id = `${id}-title`;
  node.setAttribute("aria-labelledby", title.id);
  node.append(title);
  node.addEventListener("close", () => node.remove());
  document.body.append(node);
  return node;
}

/**
 * The form to create (`info` undefined) or rename a room. `submit(title, staffOnly)` returns the
 * API result; on success the dialog closes and `done(body)` runs.
 */
export function titleDialog({ info, maxLength, isStaff, submit, done }) {
  const renaming = info !== undefined;
  const node = dialog(renaming ? "rename-room" : "new-room", renaming ? gettext("Rename room") : gettext("New room"));
  const form = el("form", "dialog-form");
  form.noValidate = true; // checked here, with the messages below, and by the server
  const label = el("label", null, gettext("Title"));
  label.htmlFor = `${node.id}-input`;
  const input = el("input", "dialog-input");
  input.id = label.htmlFor;
  input.name = "title";
  input.required = true;
  input.maxLength = maxLength;
  input.autocomplete = "off";
  input.value = info?.title ?? "";
  const error = el("p", "form-error");
  error.id = `${node.id}-error`;
  error.setAttribute("role", "alert");
  error.hidden = true;
  input.setAttribute("aria-describedby", error.id);
  form.append(label, input);
  let staffOnly = null;
  if (!renaming && isStaff) {
    const row = el("label", "dialog-check");
    staffOnly = el("input");
    staffOnly.type = "checkbox";
    staffOnly.name = "staff_only";
    row.append(staffOnly, " ", gettext("Staff only"));
    form.append(row);
  }
  const cancel = button("dialog-cancel", gettext("Cancel"), () => node.close());
  const ok = el("button", "dialog-submit", renaming ? gettext("Rename") : gettext("Create room"));
  ok.type = "submit";
  const actions = el("div", "dialog-actions");
  actions.append(cancel, ok);
  form.append(error, actions);
  node.append(form);

  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };
  input.addEventListener("input", () => {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    if (!title) return fail(gettext("Give the room a title."));
    ok.disabled = true;
    const result = await submit(title, Boolean(staffOnly?.checked));
    ok.disabled = false;
    if (!result.ok) return fail(failureText(result));
    node.close();
    done(result.body);
  });
  node.showModal();
  input.select();
  return node;
}

/**
 * The browse list: every room the user may enter. `rooms()` lists them (live: `refresh` redraws),
 * `isOpen(id)` says whether a pane shows it, `open(id)` opens it, `rejoin(id)` joins one left.
 */
export function browseDialog({ rooms, isOpen, open, rejoin }) {
  const node = dialog("browse-rooms", gettext("Browse rooms"));
  const leadText = gettext("Every room you may enter. Join one you left to put it back in your list.");
  const lead = el("p", "dialog-lead", leadText);
  const list = el("ul", "browse-list");
  list.setAttribute("aria-labelledby", `${node.id}-title`);
  const status = el("p", "form-error");
  status.setAttribute("role", "alert");
  status.hidden = true;
  const close = button("dialog-cancel", gettext("Close"), () => node.close());
  const actions = el("div", "dialog-actions");
  actions.append(close);
  node.append(lead, list, status, actions);

  const refresh = () => {
    const items = rooms().map((info) => {
      const li = el("li", "browse-room");
      li.dataset.roomId = String(info.id);
      const name = el("span", "browse-name", info.title);
      li.append(name);
      if (info.staffOnly) li.append(el("span", "badge-staff", gettext("staff")));
      if (info.left) {
        li.append(el("span", "browse-state", gettext("Not in your list")));
        const label = interpolate(gettext("Join %(room)s"), { room: info.title });
        li.append(
          button("browse-join", gettext("Join"), async () => {
            const result = await rejoin(info.id);
            if (!result.ok) {
              status.textContent = failureText(result);
              status.hidden = false;
            }
          }, label),
        );
      } else {
        const opened = isOpen(info.id);
        li.append(el("span", "browse-state", opened ? pgettext("room state", "Open") : gettext("In your list")));
        if (!opened) {
          const label = interpolate(gettext("Open %(room)s"), { room: info.title });
          li.append(button("browse-open", gettext("Open"), () => (node.close(), open(info.id)), label));
        }
      }
      return li;
    });
    if (!items.length) items.push(el("li", "browse-empty", gettext("There are no rooms yet.")));
    list.replaceChildren(...items);
  };
  refresh();
  node.refresh = refresh;
  node.showModal();
  close.focus();
  return node;
}

/**
 * "New message": pick one or more people (a filterable list from GET /api/users) and open the
 * direct conversation with them. `submit(usernames)` returns the API result (POST /api/direct);
 * on success the dialog closes and `done(body)` runs. `preset`: usernames ticked at the start.
 */
export function peopleDialog({ me, maxMembers, submit, done, nameOf, preset = [] }) {
  const node = dialog("new-direct", gettext("New message"));
  const form = el("form", "dialog-form");
  form.noValidate = true;
  const label = el("label", null, gettext("Find people"));
  label.htmlFor = `${node.id}-filter`;
  const filter = el("input", "dialog-input people-filter");
  filter.id = label.htmlFor;
  filter.type = "search";
  filter.autocomplete = "off";
  const list = el("ul", "people-list");
  list.id = `${node.id}-people`;
  list.setAttribute("aria-label", gettext("People"));
  filter.setAttribute("aria-controls", list.id);
  const chosenText = el("p", "people-chosen");
  chosenText.setAttribute("role", "status");
  const error = el("p", "form-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const cancel = button("dialog-cancel", gettext("Cancel"), () => node.close());
  const ok = el("button", "dialog-submit", gettext("Open conversation"));
  ok.type = "submit";
  const actions = el("div", "dialog-actions");
  actions.append(cancel, ok);
  form.append(label, filter, list, chosenText, error, actions);
  node.append(form);

  const chosen = new Set(preset.filter((name) => name !== me));
  const names = new Map(); // username -> display name, from the lists shown
  const shownName = (username) => names.get(username) ?? nameOf(username);
  const showChosen = () => {
    chosenText.textContent = chosen.size
      ? interpolate(gettext("To: %(people)s"), { people: [...chosen].map(shownName).join(", ") })
      : gettext("Nobody chosen yet: tick one or more people.");
  };
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  const draw = (cards) => {
    const items = cards
      .filter((card) => card.username !== me)
      .map((card) => {
        names.set(card.username, card.display_name);
        const li = el("li", "people-choice");
        const row = el("label");
        const box = el("input");
        box.type = "checkbox";
        box.value = card.username;
        box.checked = chosen.has(card.username);
        box.addEventListener("change", () => {
          error.hidden = true;
          if (box.checked) {
            if (chosen.size + 1 >= maxMembers) {
              box.checked = false;
              return fail(interpolate(gettext("At most %(count)s people, you included."), { count: maxMembers }));
            }
            chosen.add(card.username);
          } else chosen.delete(card.username);
          showChosen();
        });
        const name = card.display_name === card.username ? card.username : `${card.display_name} (@${card.username})`;
        row.append(box, " ", name);
        li.append(row);
        return li;
      });
    if (!items.length) items.push(el("li", "browse-empty", gettext("Nobody matches.")));
    list.replaceChildren(...items);
  };
  let asked = 0;
  const search = async () => {
    const mine = ++asked;
    const query = filter.value.trim();
    const result = await api("GET", apiUrl(`users${query ? `?q=${encodeURIComponent(query)}` : ""}`));
    if (mine !== asked) return; // a newer search answers instead
    if (!result.ok) return fail(failureText(result));
    draw(result.body.users);
  };
  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  filter.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      list.querySelector("input")?.focus();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen.size) return fail(gettext("Choose at least one person."));
    ok.disabled = true;
    const result = await submit([...chosen]);
    ok.disabled = false;
    if (!result.ok) return fail(failureText(result));
    node.close();
    done(result.body);
  });
  showChosen();
  search();
  node.showModal();
  filter.focus();
  return node;
}
