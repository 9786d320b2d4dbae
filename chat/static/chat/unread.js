// Unread counts of every room in the list (open or not): badges, mention marks, the page title.

import { interpolate, ngettext } from "./i18n.js";

/** The badge's words, e.g. "3 unread, 1 mentioning you", with each language's plural forms. */
function unreadLabel(count, mentions) {
  const text = mentions
    ? ngettext("%(count)s unread, %(mentions)s mentioning you", "%(count)s unread, %(mentions)s mentioning you", count)
    : ngettext("%(count)s unread", "%(count)s unread", count);
  return interpolate(text, { count, mentions });
}

/**
 * What the page knows of each room: newest seq, post count, the user's read position (a seq, and
 * the post count as of it), unread mentions. Unread = posts - readPosts: a change to a post (an
 * edit, a reaction) moves the seq but is never unread.
 */
export class Unread {
  /** `rooms` = the page config's rooms ({id, lastSeq, readSeq, posts, readPosts, mentions}); `baseTitle` = "multichat". */
  constructor(rooms, baseTitle) {
    this.baseTitle = baseTitle;
    this.state = new Map(
      rooms.map((r) => [
        r.id,
        { lastSeq: r.lastSeq, readSeq: r.readSeq, posts: r.posts ?? 0, readPosts: r.readPosts ?? 0, mentions: r.mentions },
      ]),
    );
    for (const id of this.state.keys()) this.render(id);
  }

  /** The user's read position in room `id` (0 when unknown). */
  readSeq(id) {
    return this.state.get(id)?.readSeq ?? 0;
  }

  /** The read position moved (a `read` frame from any of the user's sockets, or a join reply). */
  setRead(id, seq, posts) {
    const s = this.state.get(id);
    if (!s || (seq <= s.readSeq && posts <= s.readPosts)) return;
    s.readSeq = Math.max(s.readSeq, seq);
    s.readPosts = Math.max(s.readPosts, posts ?? 0);
    s.lastSeq = Math.max(s.lastSeq, seq);
    if (s.readPosts >= s.posts) s.mentions = 0; // all read: no unread mention is left
    this.render(id);
  }

  /** The room's newest seq and post count, as a join reply gives them. */
  known(id, lastSeq, posts) {
    const s = this.state.get(id);
    if (!s) return;
    s.lastSeq = Math.max(s.lastSeq, lastSeq);
    s.posts = Math.max(s.posts, posts ?? 0);
    this.render(id);
  }

  /**
   * A post `seq` arrived live in a joined room (in seq order, once): one post more, unless an
   * `activity` frame counted it already; the user's own post counts as read.
   */
  seen(id, seq, mine) {
    const s = this.state.get(id);
    if (!s) return;
    if (seq <= s.lastSeq) return; // known already (history, a replay, or counted by `activity`)
    s.lastSeq = seq;
    s.posts += 1;
    if (mine) {
      // Posting marks it read (the server moved the position in the same statement).
      s.readSeq = Math.max(s.readSeq, seq);
      s.readPosts = Math.max(s.readPosts, s.posts);
    }
    this.render(id);
  }

  /** A change (edit, delete, reaction) `seq` arrived: the seq moves, the count does not. */
  changed(id, seq) {
    const s = this.state.get(id);
    if (s) s.lastSeq = Math.max(s.lastSeq, seq);
  }

  /** An `activity` frame: rooms whose newest seq or unread mention count changed. */
  activity(entries) {
    for (const { room, last_seq: lastSeq, posts, mentions } of entries) {
      const s = this.state.get(room);
      if (!s) continue;
      s.lastSeq = Math.max(s.lastSeq, lastSeq);
      s.posts = Math.max(s.posts, posts ?? 0);
      s.mentions = mentions;
      this.render(room);
    }
  }

  /** Count room `id` too (added to the list, or rejoined), from the given counts. */
  add(id, { lastSeq = 0, readSeq = 0, posts = 0, readPosts = 0, mentions = 0 } = {}) {
    if (!this.state.has(id)) this.state.set(id, { lastSeq, readSeq, posts, readPosts, mentions });
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
      s.posts = Math.max(s.posts, r.posts ?? 0);
      s.readPosts = Math.max(s.readPosts, r.read_posts ?? 0);
      s.mentions = r.mentions;
      this.render(r.id);
    }
  }

  /** Draw room `id`'s badge and the page title. */
  render(id) {
    const s = this.state.get(id);
    if (!s) return;
    const count = Math.max(0, s.posts - s.readPosts);
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
    for (const r of this.state.values()) total += Math.max(0, r.posts - r.readPosts);
    document.title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
  }
}
