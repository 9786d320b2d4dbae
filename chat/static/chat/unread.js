// Unread counts of every room in the list (open or not): badges, mention marks, the page title.

import { interpolate, ngettext } from "./i18n.js";

/** The badge's words, e.g. "3 unread, 1 mentioning you", with each language's plural forms. */
function unreadLabel(count, mentions) {
  const text = mentions
    ? ngettext("%(count)s unread, %(mentions)s mentioning you", "%(count)s unread, %(mentions)s mentioning you", count)
    : ngettext("%(count)s unread", "%(count)s unread", count);
  return interpolate(text, { count, mentions });
}

/** What the page knows of each room: newest seq, the user's read position, unread mentions. */
export class Unread {
  /** `rooms` = the page config's rooms ({id, lastSeq, readSeq, mentions}); `baseTitle` = "multichat". */
  constructor(rooms, baseTitle) {
    this.baseTitle = baseTitle;
    this.state = new Map(rooms.map((r) => [r.id, { lastSeq: r.lastSeq, readSeq: r.readSeq, mentions: r.mentions }]));
    for (const id of this.state.keys()) this.render(id);
  }

  /** The user's read position in room `id` (0 when unknown). */
  readSeq(id) {
    return this.state.get(id)?.readSeq ?? 0;
  }

  /** The read position moved (a `read` frame from any of the user's sockets). */
  setRead(id, seq) {
    const s = this.state.get(id);
    if (!s || seq <= s.readSeq) return;
    s.readSeq = seq;
    s.lastSeq = Math.max(s.lastSeq, seq);
    if (s.readSeq >= s.lastSeq) s.mentions = 0; // all read: no unread mention is left
    this.render(id);
  }

  /** A stored message `seq` was shown in a joined room; the user's own post counts as read. */
  seen(id, seq, mine) {
    const s = this.state.get(id);
    if (!s) return;
    s.lastSeq = Math.max(s.lastSeq, seq);
    if (mine) s.readSeq = Math.max(s.readSeq, seq);
    this.render(id);
  }

  /** An `activity` frame: rooms whose newest seq or unread mention count changed. */
  activity(entries) {
    for (const { room, last_seq: lastSeq, mentions } of entries) {
      const s = this.state.get(room);
      if (!s) continue;
      s.lastSeq = Math.max(s.lastSeq, lastSeq);
      s.mentions = mentions;
      this.render(room);
    }
  }

  /** Count room `id` too (added to the list, or rejoined), from the given counts. */
  add(id, { lastSeq = 0, readSeq = 0, mentions = 0 } = {}) {
    if (!this.state.has(id)) this.state.set(id, { lastSeq, readSeq, mentions });
    this.render(id);
  }

  /** Stop counting room `id` (removed, or left): its badge and its share of the title go. */
  remove(id) {
    this.state.delete(id);
    this.renderTitle();
  }

  /** Replace the counts of the rooms counted (the REST room list, after a reconnect or a change). */
  reset(rooms) {
    for (const r of rooms) {
      const s = this.state.get(r.id);
      if (!s) continue;
      s.lastSeq = Math.max(s.lastSeq, r.last_seq);
      s.readSeq = Math.max(s.readSeq, r.read_seq);
      s.mentions = r.mentions;
      this.render(r.id);
    }
  }

  /** Draw room `id`'s badge and the page title. */
  render(id) {
    const s = this.state.get(id);
    if (!s) return;
    const count = Math.max(0, s.lastSeq - s.readSeq);
    const mentions = count ? s.mentions : 0;
    const badge = document.querySelector(`.room-toggle[data-room-id="${id}"] .unread`);
    if (badge) {
      badge.hidden = !count;
      badge.dataset.count = String(count);
      badge.dataset.mentions = String(mentions);
      // In a direct conversation every post is for the user: its badge stands out like a mention.
      const direct = badge.closest(".room-toggle")?.dataset.kind === "direct";
      badge.classList.toggle("has-mention", mentions > 0 || (direct && count > 0));
      badge.textContent = mentions ? `@ ${count}` : String(count);
      const label = unreadLabel(count, mentions);
      badge.title = label;
      badge.setAttribute("aria-label", label);
    }
    this.renderTitle();
  }

  /** The page title: the unread total of the rooms counted. */
  renderTitle() {
    let total = 0;
    for (const r of this.state.values()) total += Math.max(0, r.lastSeq - r.readSeq);
    document.title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
  }
}
