// A pane's awareness lines: who is in the room (online / idle) and who is typing.

import { gettext, interpolate, ngettext } from "./i18n.js";
import { avatar, nameOf, personButton } from "./people.js";
import { el } from "./render.js";

const STATE_TEXT = { online: gettext("online"), idle: gettext("idle") };

/** The member list of one room, from `presence` frames (full on join, then changes). */
export class Members {
  constructor(title) {
    this.members = new Map(); // username -> "online" | "idle"
    this.element = el("details", "members");
    // Open beside the timeline on wide screens; a one-line summary on narrow ones.
    this.element.open = !window.matchMedia("(max-width: 699px)").matches;
    this.summary = el("summary", "members-summary");
    this.list = el("ul", "member-list");
    this.list.setAttribute("aria-label", interpolate(gettext("Members of %(room)s"), { room: title }));
    this.element.append(this.summary, this.list);
    this.render();
  }

  /** Apply a presence frame: `full` replaces the list, otherwise only the named members change. */
  update(frame) {
    if (frame.full) this.members.clear();
    for (const { username, state } of frame.members) {
      if (state === "offline") this.members.delete(username);
      else this.members.set(username, state);
    }
    this.render();
  }

  /** Forget everyone (the socket closed: the next join's full frame says who is there). */
  clear() {
    this.members.clear();
    this.render();
  }

  render() {
    const names = [...this.members.keys()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    const online = names.filter((n) => this.members.get(n) === "online").length;
    this.summary.textContent = interpolate(gettext("Members (%(count)s)"), { count: names.length });
    const counts = { online, idle: names.length - online };
    this.summary.title = interpolate(gettext("%(online)s online, %(idle)s idle"), counts);
    this.list.replaceChildren(
      ...names.map((name) => {
        const state = this.members.get(name);
        const item = el("li", "member");
        item.dataset.user = name;
        item.dataset.state = state;
        const dot = el("span", "dot");
        dot.setAttribute("aria-hidden", "true");
        item.append(
          dot,
          avatar(name),
          personButton(name, "member-name"),
          el("span", "member-state", STATE_TEXT[state] ?? state),
        );
        return item;
      }),
    );
  }
}

/** "alice is typing…" under a timeline, each name shown for `expires_in` seconds unless repeated. */
export class Typing {
  constructor() {
    this.timers = new Map(); // username -> timeout id
    this.element = el("div", "typing");
    this.element.setAttribute("aria-live", "polite");
  }

  /** A `typing` frame: show `username` for `seconds`. */
  add(username, seconds) {
    clearTimeout(this.timers.get(username));
    this.timers.set(username, setTimeout(() => this.remove(username), seconds * 1000));
    this.render();
  }

  /** Stop showing `username` (their message arrived, or the time ran out). */
  remove(username) {
    if (!this.timers.has(username)) return;
    clearTimeout(this.timers.get(username));
    this.timers.delete(username);
    this.render();
  }

  /** Stop showing everyone. */
  clear() {
    for (const name of [...this.timers.keys()]) this.remove(name);
  }

  render() {
    const names = [...this.timers.keys()].map(nameOf);
    const [first, second] = names;
    this.element.dataset.count = String(names.length);
    let text = "";
    if (names.length === 1) text = interpolate(gettext("%(name)s is typing…"), { name: first });
    else if (names.length === 2) text = interpolate(gettext("%(first)s and %(second)s are typing…"), { first, second });
    else if (names.length > 2) {
      // English says "several"; the count picks the plural form where a language needs it.
      text = interpolate(
        ngettext("several people are typing…", "several people are typing…", names.length),
        { count: names.length },
      );
    }
    this.element.textContent = text;
  }
}
