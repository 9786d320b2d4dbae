// The search box in the top bar and its results panel (GET /api/search); a result opens its room at the message.

import { api, failureText } from "./roomdialogs.js";
import { gettext, interpolate, ngettext } from "./i18n.js";
import { apiUrl } from "./paths.js";
import { el } from "./render.js";

const PAGE = 20; // results per request
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "long" });
const STEPS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];

/** "3 days ago", "last month", "just now": how old `ms` is, in the browser's language. */
function age(ms) {
  const seconds = (Date.now() - ms) / 1000;
  if (seconds < 60) return gettext("just now");
  for (const [unit, size] of STEPS) {
    if (seconds >= size) return relative.format(-Math.floor(seconds / size), unit);
  }
  return gettext("just now");
}

/**
 * The snippet as DOM: its text, and <mark> around the words found. The server sends escaped text
 * with only <mark> tags; it is rebuilt here from text nodes all the same, so nothing else can get in.
 */
function snippetNodes(snippet) {
  const out = document.createDocumentFragment();
  const decoder = document.createElement("textarea"); // its content is text, never markup
  let mark = null;
  for (const part of snippet.split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") {
      mark = el("mark");
      out.append(mark);
    } else if (part === "</mark>") mark = null;
    else if (part) {
      decoder.innerHTML = part;
      (mark ?? out).append(decoder.value);
    }
  }
  return out;
}

export class SearchBox {
  /** Wire the form and panel of home.html; `open(roomId, seq)` shows a result in its room. */
  constructor({ open }) {
    this.open = open;
    this.form = document.getElementById("search-form");
    this.input = document.getElementById("search-input");
    this.panel = document.getElementById("search-panel");
    this.list = document.getElementById("search-results");
    this.status = document.getElementById("search-status");
    this.more = document.getElementById("search-more");
    this.query = "";
    this.next = null;
    this.busy = false;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.input.value.trim());
    });
    this.more.addEventListener("click", () => this.load());
    document.getElementById("search-close").addEventListener("click", () => this.close());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.panel.hidden) {
        event.preventDefault();
        this.close();
      } else if (event.key === "ArrowDown" && !this.panel.hidden) {
        event.preventDefault();
        this.results()[0]?.focus();
      }
    });
    this.panel.addEventListener("keydown", (event) => this.keydown(event));
  }

  /** The result buttons, in order. */
  results() {
    return [...this.list.querySelectorAll(".search-result")];
  }

  /** Arrows, Home and End move between results; Escape closes the panel (focus back to the box). */
  keydown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
      return;
    }
    const items = this.results();
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    if (to < 0) this.input.focus();
    else (items[to] ?? this.more).focus();
  }

  /** Start a new search for `query`. */
  search(query) {
    this.panel.hidden = false;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.next = null;
    this.query = query;
    if (!query) {
      this.status.textContent = gettext("Type what to search for, then press Enter.");
      return;
    }
    this.load();
  }

  /** Fetch the next page of the current query and append it. */
  async load() {
    if (this.busy) return;
    this.busy = true;
    this.more.disabled = true;
    this.status.textContent = gettext("Searching…");
    const params = new URLSearchParams({ query: this.query, limit: String(PAGE) });
    if (this.next) params.set("cursor", this.next);
    const query = this.query;
    const result = await api("GET", apiUrl(`search?${params}`));
    this.busy = false;
    this.more.disabled = false;
    if (query !== this.query || this.panel.hidden) return; // a newer search, or closed meanwhile
    if (!result.ok) {
      this.status.textContent =
        result.body?.error === "BAD_REQUEST"
          ? gettext("That search cannot be run: use at most 200 characters.")
          : failureText(result);
      return;
    }
    const firstNew = this.list.children.length;
    for (const found of result.body.search) this.list.append(this.item(found));
    this.next = result.body.next;
    this.more.hidden = this.next == null;
    const count = this.list.children.length;
    let text = interpolate(gettext("No messages found for “%(query)s”."), { query });
    if (count && this.next) {
      text = ngettext("%(count)s result shown; there are more.", "%(count)s results shown; there are more.", count);
    } else if (count) text = ngettext("%(count)s result", "%(count)s results", count);
    this.status.textContent = interpolate(text, { count, query });
    if (firstNew && this.results()[firstNew]) this.results()[firstNew].focus();
  }

  /** One result: room, author, age, and the snippet; activating it opens the message. */
  item(found) {
    const li = el("li", "search-item");
    const open = el("button", "search-result");
    open.type = "button";
    open.dataset.room = String(found.room);
    open.dataset.seq = String(found.seq);
    const ms = new Date(found.ts).getTime();
    const when = el("time", "search-time", age(ms));
    when.dateTime = found.ts;
    when.title = fullDate.format(ms);
    const meta = el("span", "search-meta");
    meta.append(el("span", "search-room", found.title), " · ", el("span", "search-author", found.username), " · ", when);
    const snippet = el("span", "search-snippet");
    snippet.append(snippetNodes(found.snippet));
    open.append(meta, snippet);
    open.addEventListener("click", () => {
      this.close({ focusBox: false });
      this.open(found.room, found.seq);
    });
    li.append(open);
    return li;
  }

  /** Hide the panel; the keyboard goes back to the search box unless a result was opened. */
  close({ focusBox = true } = {}) {
    this.panel.hidden = true;
    if (focusBox) this.input.focus();
  }
}
