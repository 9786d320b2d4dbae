// People: display names and avatars looked up at /api/users (cached per page), and the profile card.
//
// Frames carry usernames only. Each name or avatar element is drawn from the cache, or from the
// username until the lookup answers; then every element of that person is repainted. A changed
// display name reaches other people's pages on their next load (the cache lives as long as the page).

import { gettext, interpolate } from "./i18n.js";
import { apiUrl } from "./paths.js";

const BATCH_DELAY = 30; // ms: usernames asked for within this window go in one request
const MAX_BATCH = 100; // the server's limit per request

const cards = new Map(); // username -> card from the server (or the page's config)
const wanted = new Set(); // usernames to look up in the next batch
const asked = new Set(); // usernames looked up (or being looked up): not asked again
let batchTimer = null;
let me = null;
let dialog = null;
let opener = null; // the element that opened the card, focused again when it closes

/** Start with the user's own card (from the page), so their name shows at once. */
export function initPeople(profile) {
  me = profile.username;
  cards.set(me, profile);
  asked.add(me);
}

/** The name to show for `username`: the display name once known, the username until then. */
export function nameOf(username) {
  return cards.get(username)?.display_name || username;
}

/** A round avatar (initials on the person's colour) for `username`; decorative, so hidden from AT. */
export function avatar(username, className = "avatar") {
  const node = document.createElement("span");
  node.className = className;
  node.dataset.person = username;
  node.setAttribute("aria-hidden", "true");
  paintAvatar(node, username);
  want(username);
  return node;
}

/**
 * A button showing `username`'s display name that opens their profile card; `className` is kept
 * for the surrounding styles (e.g. "author"). `tabStop: false` keeps it out of the Tab order
 * (the timeline's names: the list is one Tab stop, and the member list reaches the same cards).
 */
export function personButton(username, className, { tabStop = true } = {}) {
  const node = document.createElement("button");
  node.type = "button";
  if (!tabStop) node.tabIndex = -1;
  node.className = `person ${className}`;
  node.dataset.person = username;
  node.addEventListener("click", () => openCard(username, node));
  paintName(node, username);
  want(username);
  return node;
}

function paintAvatar(node, username) {
  const card = cards.get(username);
  node.textContent = card?.initials ?? (username.slice(0, 1).toUpperCase() || "?");
  if (card) node.style.backgroundColor = card.color;
  node.dataset.known = String(Boolean(card));
}

function paintName(node, username) {
  const name = nameOf(username);
  node.textContent = name;
  // The username stays reachable: display names are not unique, usernames are.
  node.title =
    name === username ? interpolate(gettext("Profile of %(username)s"), { username }) : `${name} (@${username})`;
}

/** Repaint every name and avatar of `username` on the page (after a lookup or a change). */
function repaint(username) {
  for (const node of document.querySelectorAll(`[data-person="${CSS.escape(username)}"]`)) {
    if (node.tagName === "BUTTON") paintName(node, username);
    else paintAvatar(node, username);
  }
  for (const hook of repaintHooks) hook(username);
}

const repaintHooks = [];

/** Call `hook(username)` whenever a person's card arrives or changes (e.g. to re-sort a list). */
export function onRepaint(hook) {
  repaintHooks.push(hook);
}

function want(username) {
  if (!username || asked.has(username)) return;
  wanted.add(username);
  batchTimer ??= setTimeout(lookUp, BATCH_DELAY);
}

/** Ask the server for the cards of every wanted username, in batches of MAX_BATCH. */
async function lookUp() {
  batchTimer = null;
  const names = [...wanted];
  wanted.clear();
  for (let i = 0; i < names.length; i += MAX_BATCH) {
    const batch = names.slice(i, i + MAX_BATCH);
    batch.forEach((name) => asked.add(name));
    const query = batch.map((name) => `username=${encodeURIComponent(name)}`).join("&");
    try {
      const reply = await fetch(apiUrl(`users?${query}`), { credentials: "same-origin" });
      if (!reply.ok) throw new Error(String(reply.status));
      for (const card of (await reply.json()).users) {
        cards.set(card.username, card);
        repaint(card.username);
      }
    } catch {
      batch.forEach((name) => asked.delete(name)); // offline: the next element asks again
    }
  }
}

/** The card of `username`, from the cache or the server; null if there is no such account. */
async function cardFor(username) {
  if (cards.has(username) && "joined" in cards.get(username)) return cards.get(username);
  const before = cards.get(username);
  const reply = await fetch(apiUrl(`users/${encodeURIComponent(username)}`), { credentials: "same-origin" });
  if (!reply.ok) return null;
  let card = await reply.json();
  // Changed here while the lookup ran (your own name saved): what was saved is newer.
  const now = cards.get(username);
  if (now !== before) card = { ...card, ...now };
  cards.set(username, card);
  repaint(username);
  return card;
}

function csrfToken() {
  return document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/)?.[1] ?? "";
}

function buildDialog() {
  dialog = document.createElement("dialog");
  dialog.className = "profile-card";
  dialog.setAttribute("aria-labelledby", "profile-card-name");
  dialog.addEventListener("close", () => {
    opener?.focus();
    opener = null;
  });
  // A click on the backdrop (outside the card's box) closes it, as Escape does.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) {
      const box = dialog.getBoundingClientRect();
      const inside =
        event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) dialog.close();
    }
  });
  document.body.append(dialog);
}

let messageAction = null; // (username) => open a direct conversation with them (app.js)

/** What a card's "Message" button does: open a direct conversation with its person. */
export function setMessageAction(action) {
  messageAction = action;
}

/** Open the profile card of `username`, focus in it; Escape or Close returns focus to `from`. */
export async function openCard(username, from) {
  if (!dialog) buildDialog();
  opener = from;
  fillCard(cards.get(username) ?? { username, display_name: username }, false);
  if (!dialog.open) dialog.showModal();
  dialog.querySelector(".profile-close").focus();
  try {
    const card = await cardFor(username);
    if (dialog.open && dialog.dataset.card === username) {
      if (card) fillCard(card, true);
      else dialog.querySelector(".profile-joined").textContent = gettext("This account no longer exists.");
    }
  } catch {
    // Offline: the card keeps what the cache knew.
  }
}

function fillCard(card, complete) {
  const focused = dialog.contains(document.activeElement) ? document.activeElement.className : null;
  // A name typed into your own card while its details were loading stays typed.
  const input = dialog.dataset.card === card.username ? dialog.querySelector(".profile-input") : null;
  const typed = input && input.value !== input.defaultValue ? input.value : null;
  // data-card, not data-person: repaint() redraws every [data-person] element as a name or
  // an avatar, which would wipe the open card whenever its person's details arrive.
  dialog.dataset.card = card.username;
  const head = document.createElement("div");
  head.className = "profile-head";
  const big = avatar(card.username, "avatar avatar-large");
  const names = document.createElement("div");
  const title = document.createElement("h2");
  title.id = "profile-card-name";
  title.textContent = card.display_name || card.username;
  const handle = document.createElement("p");
  handle.className = "profile-username";
  handle.textContent = `@${card.username}`;
  names.append(title, handle);
  head.append(big, names);

  const facts = document.createElement("p");
  facts.className = "profile-joined";
  if (complete && card.joined === null) {
    facts.textContent = ""; // a host site's user model may record no date (docs/embedding.md)
  } else if (complete) {
    // The date in the browser's locale (undefined), the sentence in the page's language.
    const long = { year: "numeric", month: "long", day: "numeric" };
    const date = new Date(card.joined).toLocaleDateString(undefined, long);
    const text = card.is_staff ? gettext("Staff member. Joined on %(date)s.") : gettext("Joined on %(date)s.");
    facts.textContent = interpolate(text, { date });
  } else facts.textContent = gettext("Loading…");

  const close = document.createElement("button");
  close.type = "button";
  close.className = "profile-close";
  close.textContent = gettext("Close");
  close.addEventListener("click", () => dialog.close());

  const parts = [head, facts];
  if (card.username === me) parts.push(editForm(card));
  else if (messageAction) {
    const message = document.createElement("button");
    message.type = "button";
    message.className = "profile-message";
    message.textContent = gettext("Message");
    message.setAttribute("aria-label", interpolate(gettext("Send %(name)s a direct message"), { name: title.textContent }));
    message.addEventListener("click", () => {
      opener = null; // focus goes to the conversation, not back to the card's opener
      dialog.close();
      messageAction(card.username);
    });
    parts.push(message);
  }
  parts.push(close);
  dialog.replaceChildren(...parts);
  if (typed !== null) dialog.querySelector(".profile-input").value = typed;
  // Keep the keyboard in the open card: on what had focus, else on Close.
  if (focused) dialog.querySelector(`.${focused.split(" ")[0]}`)?.focus();
  else if (dialog.open) close.focus();
}

/** The form on your own card that changes your display name (PATCH /api/me). */
function editForm(card) {
  const form = document.createElement("form");
  form.className = "profile-edit";
  const label = document.createElement("label");
  label.htmlFor = "profile-display-name";
  label.textContent = gettext("Display name");
  const input = document.createElement("input");
  input.id = "profile-display-name";
  input.className = "profile-input";
  input.maxLength = 50;
  input.autocomplete = "nickname";
  // The default value too: what differs from it is what the person typed (fillCard keeps it).
  input.defaultValue = card.display_name === card.username ? "" : card.display_name;
  input.placeholder = card.username;
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "profile-save";
  save.textContent = gettext("Save");
  const status = document.createElement("p");
  status.className = "profile-status";
  status.setAttribute("role", "status");
  const help = document.createElement("p");
  help.className = "profile-help";
  help.id = "profile-display-name-help";
  help.textContent = gettext(
    "Leave it empty to be shown by your username. Others see a new name when they next load the page.",
  );
  input.setAttribute("aria-describedby", help.id);
  form.append(label, input, save, help, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    status.textContent = gettext("Saving…");
    try {
      const reply = await fetch(apiUrl("me"), {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ display_name: input.value }),
      });
      const body = await reply.json();
      if (!reply.ok) {
        status.textContent = body.detail || gettext("The name was not saved. Try again.");
        return;
      }
      cards.set(me, { ...cards.get(me), ...body });
      repaint(me);
      fillCard(cards.get(me), true);
      dialog.querySelector(".profile-status").textContent = gettext("Saved.");
      dialog.querySelector(".profile-input").focus();
    } catch {
      status.textContent = gettext("You are offline. The name was not saved.");
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
