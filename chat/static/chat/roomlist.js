// The room list, drawn from data and kept live: every room the user may enter (the catalog),
// the ones in their list (not left) as .room-toggle buttons, and the room-list frames.
// Direct conversations (kind "direct") go in their own list, each named by its other members.

import { gettext } from "./i18n.js";
import { avatar, nameOf } from "./people.js";
import { el } from "./render.js";

const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

/** Rooms sorted as the server sorts them: by title, then id. */
export function byTitle(a, b) {
  return collator.compare(a.title, b.title) || a.id - b.id;
}

/** What a direct conversation is called for `me`: the other members' display names. */
export function directTitle(members, me) {
  const others = (members ?? []).filter((name) => name !== me);
  if (!others.length) return gettext("Notes to self");
  return others.map(nameOf).join(", ");
}

export class RoomList {
  /**
   * `rooms` = the page config's rooms ({id, title, staffOnly, createdBy, left}); `list` the <ul>,
   * `empty` the paragraph shown when the list is empty; `onChange()` runs after every change.
   */
  constructor(rooms, { me, isStaff, list, empty, directList, onChange }) {
    this.me = me;
    this.isStaff = isStaff;
    this.list = list;
    this.empty = empty;
    this.directList = directList; // the "Direct messages" <ul>
    this.onChange = onChange;
    this.catalog = new Map(); // room id -> {id, title, staffOnly, createdBy, left}
    this.items = new Map(); // room id -> <li>, for the rooms in the list
    // Rooms the user left, kept while a room is out of the catalog (made staff-only, then open again).
    this.leftIds = new Set(rooms.filter((r) => r.left).map((r) => r.id));
    for (const r of rooms) this.catalog.set(r.id, this.named({ ...r }));
    this.render();
  }

  /** `info` with its shown title: a conversation's is its other members' names (`title` otherwise). */
  named(info) {
    if (info.kind === "direct") info.title = directTitle(info.members, this.me);
    return info;
  }

  /** Re-name the conversations (a display name arrived); returns the ids whose title changed. */
  retitle() {
    const changed = [];
    for (const info of this.catalog.values()) {
      if (info.kind !== "direct") continue;
      const before = info.title;
      if (this.named(info).title !== before) changed.push(info.id);
    }
    if (changed.length) this.render();
    return changed;
  }

  /** The conversation of exactly `usernames` (plus the user), if the page knows it. */
  findDirect(usernames) {
    const want = [...new Set([...usernames, this.me])].sort().join("\n");
    for (const info of this.catalog.values()) {
      if (info.kind === "direct" && [...info.members].sort().join("\n") === want) return info;
    }
    return undefined;
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

  /** True if the user may rename room `id`: staff, or the person who created it (never a conversation). */
  canRename(id) {
    const info = this.catalog.get(id);
    if (!info || info.kind === "direct") return false;
    return Boolean(this.isStaff || (info.createdBy && info.createdBy === this.me));
  }

  /** Every room the user may enter, by title (the browse list; conversations are in their own list). */
  all() {
    return [...this.catalog.values()].filter((r) => r.kind !== "direct").sort(byTitle);
  }

  /**
   * A room was created or changed (`room_listed`), or rejoined (`room_rejoined`, `left` false).
   * Returns "added" if it is new in the list, "changed" if it was there, "" if it is left.
   */
  upsert({ id, title, staffOnly, createdBy, left, kind = "room", members = null }) {
    const wasListed = this.listed(id);
    if (left !== undefined) this.setLeftId(id, left);
    const info = this.named({ id, title, staffOnly, createdBy, left: this.leftIds.has(id), kind, members });
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
    const roomsShown = shown.filter((r) => r.kind !== "direct");
    const direct = shown.filter((r) => r.kind === "direct");
    this.fill(this.list, roomsShown);
    if (this.directList) this.fill(this.directList, direct);
    this.list.hidden = roomsShown.length === 0;
    if (this.empty) this.empty.hidden = roomsShown.length > 0;
    this.onChange?.();
  }

  /** Put the items of `shown` into `list`, in order. */
  fill(list, shown) {
    shown.forEach((info, index) => {
      let li = this.items.get(info.id);
      if (!li) {
        li = this.item(info);
        this.items.set(info.id, li);
      } else this.update(li, info);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] ?? null);
    });
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
    if (info.kind === "direct") {
      toggle.dataset.kind = "direct";
      const other = (info.members ?? []).find((name) => name !== this.me) ?? this.me;
      toggle.append(avatar(other, "avatar avatar-small"));
    }
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
