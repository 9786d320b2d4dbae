// The room list, drawn from data and kept live: every room the user may enter (the catalog),
// the ones in their list (not left) as .room-toggle buttons, and the room-list frames.

import { gettext } from "./i18n.js";
import { el } from "./render.js";

const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

/** Rooms sorted as the server sorts them: by title, then id. */
export function byTitle(a, b) {
  return collator.compare(a.title, b.title) || a.id - b.id;
}

export class RoomList {
  /**
   * `rooms` = the page config's rooms ({id, title, staffOnly, createdBy, left}); `list` the <ul>,
   * `empty` the paragraph shown when the list is empty; `onChange()` runs after every change.
   */
  constructor(rooms, { me, isStaff, list, empty, onChange }) {
    this.me = me;
    this.isStaff = isStaff;
    this.list = list;
    this.empty = empty;
    this.onChange = onChange;
    this.catalog = new Map(); // room id -> {id, title, staffOnly, createdBy, left}
    this.items = new Map(); // room id -> <li>, for the rooms in the list
    // Rooms the user left, kept while a room is out of the catalog (made staff-only, then open again).
    this.leftIds = new Set(rooms.filter((r) => r.left).map((r) => r.id));
    for (const r of rooms) this.catalog.set(r.id, { ...r });
    this.render();
  }

  /** The room `id` if the user may enter it (in the list or left), else undefined. */
  get(id) {
    return this.catalog.get(id);
  }

  /** True if room `id` is in the user's list (known, and not left). */
  listed(id) {
    const info = this.catalog.get(id);
    return Boolean(info && !info.left);
  }

  /** True if the user may rename room `id`: staff, or the person who created it. */
  canRename(id) {
    const info = this.catalog.get(id);
    return Boolean(info && (this.isStaff || (info.createdBy && info.createdBy === this.me)));
  }

  /** Every room the user may enter, by title (the browse list). */
  all() {
    return [...this.catalog.values()].sort(byTitle);
  }

  /**
   * A room was created or changed (`room_listed`), or rejoined (`room_rejoined`, `left` false).
   * Returns "added" if it is new in the list, "changed" if it was there, "" if it is left.
   */
  upsert({ id, title, staffOnly, createdBy, left }) {
    const wasListed = this.listed(id);
    if (left !== undefined) this.setLeftId(id, left);
    const info = { id, title, staffOnly, createdBy, left: this.leftIds.has(id) };
    this.catalog.set(id, info);
    this.render();
    if (info.left) return "";
    return wasListed ? "changed" : "added";
  }

  /** A room was deleted or may no longer be entered: forget it; returns what it was (or undefined). */
  remove(id) {
    const info = this.catalog.get(id);
    this.catalog.delete(id);
    this.render();
    return info;
  }

  /** The user left (true) or rejoined (false) room `id` on some device. */
  setLeft(id, left) {
    this.setLeftId(id, left);
    const info = this.catalog.get(id);
    if (!info || info.left === left) return false;
    info.left = left;
    this.render();
    return true;
  }

  setLeftId(id, left) {
    if (left) this.leftIds.add(id);
    else this.leftIds.delete(id);
  }

  /** Mark the rooms whose panes are open (aria-pressed). */
  setOpen(openIds) {
    for (const [id, li] of this.items) {
      li.querySelector(".room-toggle").setAttribute("aria-pressed", String(openIds.has(id)));
    }
  }

  /** Draw the list: keep each room's <li> (its badge state), add, update, drop and order them. */
  render() {
    const shown = [...this.catalog.values()].filter((r) => !r.left).sort(byTitle);
    const keep = new Set(shown.map((r) => r.id));
    for (const [id, li] of this.items) {
      if (!keep.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    shown.forEach((info, index) => {
      let li = this.items.get(info.id);
      if (!li) {
        li = this.item(info);
        this.items.set(info.id, li);
      } else this.update(li, info);
      if (this.list.children[index] !== li) this.list.insertBefore(li, this.list.children[index] ?? null);
    });
    this.list.hidden = shown.length === 0;
    if (this.empty) this.empty.hidden = shown.length > 0;
    this.onChange?.();
  }

  /** A new list item: the toggle button with the room's name, staff badge and unread badge. */
  item(info) {
    const li = el("li");
    const toggle = el("button", "room-toggle");
    toggle.type = "button";
    toggle.dataset.roomId = String(info.id);
    toggle.setAttribute("aria-pressed", "false");
    const unread = el("span", "unread", "0");
    unread.dataset.count = "0";
    unread.dataset.mentions = "0";
    unread.hidden = true;
    toggle.append(el("span", "room-name"), " ", unread);
    li.append(toggle);
    this.update(li, info);
    return li;
  }

  /** Show `info`'s title and staff badge in its item. */
  update(li, info) {
    const toggle = li.querySelector(".room-toggle");
    toggle.dataset.staffOnly = String(Boolean(info.staffOnly));
    toggle.querySelector(".room-name").textContent = info.title;
    let badge = toggle.querySelector(".badge-staff");
    if (info.staffOnly && !badge) {
      badge = el("span", "badge-staff", gettext("staff"));
      badge.title = gettext("Staff only");
      toggle.querySelector(".room-name").after(" ", badge);
    } else if (!info.staffOnly && badge) badge.remove();
  }
}
