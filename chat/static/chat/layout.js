// Where open rooms show: side-by-side panes or one room at a time (tabs on a desktop, the room list
// a tap away on a phone), which room is in front, and remembering both across reloads and logins.

import { el } from "./render.js";

const PHONE = "(max-width: 699px)"; // the same width as chat.css's phone layout
const STORE_PREFIX = "multichat.layout."; // + username: {open: [room ids], front: id, view}

export class Layout {
  /**
   * Lay out the panes of `rooms` (room id -> Room, kept by app.js) for user `me`; `open(id)` and
   * `close(id)` open and leave a room (app.js makes and destroys the Room).
   */
  constructor({ me, rooms, open, close }) {
    this.rooms = rooms;
    this.openRoom = open;
    this.closeRoom = close;
    this.key = STORE_PREFIX + me;
    this.root = document.body;
    this.panes = document.getElementById("panes");
    this.hint = document.getElementById("panes-hint");
    this.tabs = document.getElementById("room-tabs");
    this.list = document.getElementById("room-list");
    this.showRooms = document.getElementById("show-rooms");
    this.viewToggle = document.getElementById("view-toggle");
    this.phone = window.matchMedia(PHONE);
    const saved = this.load();
    this.saved = saved;
    this.tabsOnDesktop = saved.view === "tabs";
    this.front = null; // the room id shown (one-room view) or last used (panes)
    this.listShown = true; // phone: the room list is on screen instead of a room

    this.showRooms.addEventListener("click", () => this.showList());
    this.viewToggle.addEventListener("click", () => {
      this.tabsOnDesktop = !this.tabsOnDesktop;
      this.render();
      this.save();
    });
    this.tabs.addEventListener("keydown", (event) => this.tabKey(event));
    this.phone.addEventListener("change", () => this.render());
  }

  /** True when one room shows at a time (always on a phone; on a desktop when chosen). */
  get single() {
    return this.phone.matches || this.tabsOnDesktop;
  }

  /** Open the rooms that were open last time (those still listed), with the same one in front. */
  restore() {
    const { open, front } = this.saved;
    for (const id of open) this.openRoom(id, { focus: false });
    if (this.rooms.has(front)) this.show(front, { focus: false });
    else this.render();
    if (!this.rooms.size) this.save();
  }

  /** A room was opened (app.js made its pane): put it in front. */
  added(room, { focus = true } = {}) {
    this.panes.append(room.pane);
    room.pane.id = `pane-${room.id}`;
    const tab = el("button", "room-tab");
    tab.type = "button";
    tab.id = `tab-${room.id}`;
    tab.dataset.roomId = String(room.id);
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", room.pane.id);
    tab.append(el("span", "room-tab-name", room.title));
    tab.addEventListener("click", () => this.show(room.id));
    room.tab = tab;
    this.tabs.append(tab);
    this.show(room.id, { focus });
  }

  /** A room was closed: show the one opened before it (or the room list on a phone). */
  removed(room) {
    room.tab?.remove();
    if (this.front === room.id) {
      const ids = [...this.rooms.keys()];
      this.front = ids.length ? ids[ids.length - 1] : null;
      if (this.front == null) this.listShown = true;
    }
    this.render();
    this.save();
  }

  /** Bring room `id` to the front (on a phone: instead of the room list). */
  show(id, { focus = true } = {}) {
    const room = this.rooms.get(id);
    if (!room) return;
    this.front = id;
    this.listShown = false;
    this.render();
    this.save();
    if (!this.single) room.pane.scrollIntoView({ block: "nearest", inline: "nearest" });
    if (focus) room.focus();
  }

  /** Phone: show the room list instead of the room. */
  showList() {
    this.listShown = true;
    this.render();
    this.list.querySelector(`.room-toggle[data-room-id="${this.front}"]`)?.focus();
  }

  /** A room in the list was clicked: open it; an open one is closed (panes) or brought to the front. */
  toggled(id) {
    if (!this.rooms.has(id)) this.openRoom(id, { focus: true });
    else if (this.single) this.show(id);
    else this.closeRoom(id);
  }

  /** Arrow keys, Home and End move between tabs (the ARIA tabs pattern). */
  tabKey(event) {
    const tabs = [...this.tabs.children];
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    this.show(Number(tab.dataset.roomId), { focus: false });
    tab.focus();
  }

  /** Draw the current state: the view, which pane and tab show, the list's pressed states. */
  render() {
    const single = this.single;
    const phone = this.phone.matches;
    if (this.front != null && !this.rooms.has(this.front)) this.front = null;
    const roomShown = single && phone && !this.listShown && this.front != null;
    this.root.dataset.view = single ? "single" : "panes";
    this.root.dataset.show = roomShown ? "room" : "list";
    this.showRooms.hidden = !roomShown;
    this.viewToggle.hidden = phone;
    this.viewToggle.setAttribute("aria-pressed", String(this.tabsOnDesktop));
    this.tabs.hidden = !single || phone || this.rooms.size === 0;
    for (const room of this.rooms.values()) {
      const front = room.id === this.front;
      room.pane.hidden = single && !front;
      if (single) room.pane.setAttribute("role", "tabpanel");
      else room.pane.removeAttribute("role");
      if (room.tab) {
        room.tab.setAttribute("aria-selected", String(front));
        room.tab.tabIndex = front ? 0 : -1;
        const name = room.tab.firstElementChild;
        if (name.textContent !== room.title) name.textContent = room.title;
        room.tab.title = room.title;
      }
      room.titleEl.title = room.title;
    }
    for (const toggle of document.querySelectorAll(".room-toggle")) {
      const id = Number(toggle.dataset.roomId);
      toggle.setAttribute("aria-pressed", String(this.rooms.has(id)));
      if (single && id === this.front) toggle.setAttribute("aria-current", "true");
      else toggle.removeAttribute("aria-current");
      const name = toggle.querySelector(".room-name");
      if (name && name.title !== name.textContent) name.title = name.textContent;
    }
    if (this.hint) this.hint.hidden = this.rooms.size > 0 || !document.querySelector(".room-toggle");
    this.panes.dataset.count = String(this.rooms.size);
  }

  /** What was saved for this user: open room ids, the front one, the desktop view. */
  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.key) || "{}");
      const open = Array.isArray(saved.open) ? saved.open.filter(Number.isInteger) : [];
      return { open, front: saved.front, view: saved.view };
    } catch {
      return { open: [] }; // unreadable or storage refused: start empty
    }
  }

  save() {
    const state = { open: [...this.rooms.keys()], front: this.front, view: this.tabsOnDesktop ? "tabs" : "panes" };
    try {
      localStorage.setItem(this.key, JSON.stringify(state));
    } catch {
      // Storage full or refused (private mode): the layout is simply not remembered.
    }
  }
}
