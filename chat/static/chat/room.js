// One open room: its pane, and the protocol state behind it (seqs, history, gaps, pending sends).

import { addFiles } from "./attachments.js";
import { CHANGE_KINDS, applyChange, cancelReply, changeDone, changeFailed, changesDisconnected, decoratePost, editLast } from "./changes.js";
import { Composer } from "./composer.js";
import { gettext, interpolate } from "./i18n.js";
import { Members, Typing } from "./members.js";
import { renderPending } from "./outbox.js";
import { button, charCount, el, errorText, messageElement, pendingElement } from "./render.js";
import { ReplyBanner, refreshQuotes } from "./replies.js";
import { Timeline } from "./timeline.js";

const PAGE_SIZE = 50; // messages per history request
const MAX_PAGE = 100; // the server's largest history page
const TYPING_EVERY = 3000; // ms between two `typing` commands while the user types

/** The pane's close button's name: it closes the pane (the room stays in the list; the menu leaves it). */
function closeLabel(title) {
  return interpolate(gettext("Close %(room)s"), { room: title });
}

/** True when a pending message's files are the ones a message frame carries. */
function sameFiles(mine = [], theirs = []) {
  return mine.map((f) => f.id).join() === theirs.map((f) => f.id).join();
}

export class Room {
  /**
   * Build the pane for room `info`; `ctx` = {command, outbox, me, isStaff, maxLength, uploadMaxBytes,
   * uploadMaxFiles, editWindow, onLeave,
   * readSeq(id), markRead(room, seq), seen(id, seq, mine), canRename(id), onRename(id), onDepart(id)}.
   */
  constructor(info, ctx) {
    this.id = info.id;
    this.title = info.title;
    this.ctx = ctx;
    this.joined = false; // the server confirmed the join on the current socket
    this.joining = false; // a join is in flight on the current socket
    this.synced = false; // the first history page arrived (so `since` can be used)
    this.knownSeq = 0; // every seq up to this one is accounted for (posts and changes)
    this.maxSeq = 0; // the highest seq shown
    this.changeSeqs = new Set(); // seqs of change frames received above knownSeq (chat/changes.js)
    this.replyTo = null; // the seq of the post the composer's next message answers
    this.bySeq = new Map(); // seq -> list item
    this.pending = []; // own messages not yet confirmed: {room, text, type, state, ref, seq, error, el}
    this.errorKind = null; // what the error shown is about: "compose" (the box), else a command
    this.hasMore = true;
    this.loadingOlder = false;
    this.gapFilling = false;
    this.replayLeft = 0; // replayed frames still expected after a join with `since`
    this.visible = true;
    this.firstUnread = null; // the first seq after the read position at join (the divider's place)
    this.divider = null;
    this.jumping = false; // paging back to show the first unread message
    this.jumpTarget = null; // the seq jumpTo is paging back for
    this.mentioned = new Set(); // seqs that a mention frame named
    this.typingSent = 0; // when the last `typing` command went out (ms)
    this.readSent = 0; // the highest seq a `read` command went out for, unanswered (set by app.js)
    this.build(info);
  }

  build(info) {
    this.pane = el("section", "room-pane");
    this.pane.dataset.roomId = String(this.id);
    this.pane.dataset.state = "joining";
    this.pane.setAttribute("aria-labelledby", `pane-title-${this.id}`);

    const head = el("header", "pane-head");
    this.titleEl = el("h2", "pane-title", info.title);
    this.titleEl.id = `pane-title-${this.id}`;
    head.append(this.titleEl);
    if (info.staffOnly) head.append(el("span", "badge-staff", gettext("staff")));
    this.stateEl = el("span", "pane-state");
    const close = button("pane-close", "×", () => this.ctx.onLeave(this.id), closeLabel(info.title));
    close.title = gettext("Close this room");
    this.closeButton = close;
    head.append(this.stateEl, this.buildMenu(), close);

    this.errorBox = el("div", "pane-error");
    this.errorBox.setAttribute("role", "alert");
    this.errorBox.hidden = true;

    this.members = new Members(info.title);
    this.timeline = new Timeline(info.title, {
      onTop: () => this.synced && this.loadOlder(),
      onBottom: () => this.checkRead(),
      onScroll: () => this.updateJump(),
    });
    this.jumpButton = button("jump-unread", gettext("Jump to first unread ↑"), () => this.jumpToUnread());
    this.jumpButton.hidden = true;
    this.timeline.element.append(this.jumpButton);
    this.typing = new Typing();
    this.composer = new Composer(info.title, {
      isStaff: this.ctx.isStaff,
      maxLength: this.ctx.maxLength,
      maxBytes: this.ctx.uploadMaxBytes,
      maxFiles: this.ctx.uploadMaxFiles,
      onSend: (text, type, files) => this.send(text, type, files),
      onInvalid: (text) => this.showError(text, undefined, "compose"),
      onInput: (text) => this.typed(text),
      onUpEmpty: () => editLast(this),
      onEscape: () => cancelReply(this),
    });
    this.replyBanner = new ReplyBanner(() => {
      cancelReply(this);
      this.composer.focus();
    });
    this.pane.append(
      head,
      this.errorBox,
      this.members.element,
      this.timeline.element,
      this.typing.element,
      this.replyBanner.element,
      this.composer.form,
    );
    this.composer.acceptFiles(this.pane);
    this.pane.addEventListener("focusin", () => this.checkRead());
    this.observer = new IntersectionObserver(
      ([entry]) => {
        this.visible = entry.intersectionRatio >= 0.3;
        this.checkRead();
      },
      { threshold: [0, 0.3, 0.6] },
    );
    this.observer.observe(this.pane);
    this.updateTop();
  }

  /** The room's options: rename (its creator, staff) and leave it for good (out of the list). */
  buildMenu() {
    const menu = el("details", "pane-menu");
    const summary = el("summary", "pane-menu-toggle", "⋯");
    summary.setAttribute("aria-label", gettext("Room options"));
    summary.title = gettext("Room options");
    const items = el("div", "pane-menu-items");
    this.renameButton = button("pane-rename", gettext("Rename…"), () => {
      menu.open = false;
      this.ctx.onRename(this.id);
    });
    this.renameButton.hidden = !this.ctx.canRename(this.id);
    const depart = button("pane-depart", gettext("Leave room"), () => {
      menu.open = false;
      this.ctx.onDepart(this.id);
    });
    depart.title = gettext("Take this room out of your list on all your devices");
    items.append(this.renameButton, depart);
    menu.append(summary, items);
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        summary.focus();
      }
    });
    return menu;
  }

  // --- commands ------------------------------------------------------------

  /** Join (or, after a reconnect, re-join with `since`) on the current socket. */
  join() {
    if (this.removed) return;
    const cmd = { command: "join", room: this.id };
    this.joinedSince = this.synced ? this.knownSeq : undefined;
    if (this.joinedSince !== undefined) cmd.since = this.joinedSince;
    if (this.ctx.command(this, cmd, "join") != null) {
      this.joining = true;
      this.setState("joining", gettext("Joining…"));
    } else this.setState("disconnected", ""); // the top bar says why, once for every pane
    this.updateTop();
  }

  /** Ask for the newest page (first time) or the page before the oldest message shown. */
  loadOlder(limit = PAGE_SIZE) {
    if (!this.joined || this.loadingOlder || (this.synced && !this.hasMore)) return;
    const cmd = { command: "history", room: this.id, limit };
    const oldest = this.timeline.list.querySelector(".message[data-seq]");
    if (this.synced && oldest) cmd.before = Number(oldest.dataset.seq);
    if (this.ctx.command(this, cmd, this.synced ? "older" : "initial") == null) return;
    this.loadingOlder = true;
    this.updateTop();
  }

  /** Ask for the messages missing between knownSeq and the next seq shown. */
  fillGap() {
    if (this.gapFilling || !this.joined) return;
    let next = Infinity;
    for (const seq of this.bySeq.keys()) if (seq > this.knownSeq && seq < next) next = seq;
    for (const seq of this.changeSeqs) if (seq > this.knownSeq && seq < next) next = seq;
    if (next === Infinity) return;
    const limit = Math.min(MAX_PAGE, next - this.knownSeq - 1);
    const cmd = { command: "history", room: this.id, before: next, limit };
    if (this.ctx.command(this, cmd, "gap", { next }) != null) this.gapFilling = true;
  }

  /** The user typed in the composer: tell the room, at most every TYPING_EVERY ms. */
  typed(text) {
    // The box no longer holds the message that was too long: that error no longer applies.
    if (this.errorKind === "compose" && charCount(text) <= this.ctx.maxLength) this.hideError();
    const now = Date.now();
    if (!this.joined || !text.trim() || now - this.typingSent < TYPING_EVERY) return;
    if (this.ctx.command(this, { command: "typing", room: this.id }, "typing") != null) this.typingSent = now;
  }

  /** Scroll to the "New messages" divider, paging back through history until it is shown. */
  jumpToUnread() {
    this.jumping = false;
    if (this.firstUnread == null) return;
    if (this.divider?.isConnected) {
      const list = this.timeline.list;
      list.scrollTop += this.divider.getBoundingClientRect().top - list.getBoundingClientRect().top;
      this.divider.focus({ preventScroll: true });
      this.updateJump();
    } else if (this.hasMore || !this.synced) {
      this.jumping = true;
      this.loadOlder();
    }
  }

  /**
   * Scroll to message `seq` and highlight it for a moment, paging back through history (in the
   * largest pages) until it is shown; say so if it is not there (deleted, or purged).
   */
  jumpTo(seq) {
    this.jumpTarget = seq;
    this.continueJump();
  }

  /** Go on with a pending jumpTo: show the message, ask for an older page, or say it is gone. */
  continueJump() {
    const seq = this.jumpTarget;
    if (seq == null) return;
    const node = this.bySeq.get(seq);
    if (node) {
      this.jumpTarget = null;
      this.reveal(node);
      if (node.dataset.deleted === "true") this.showError(gettext("That message was deleted."), undefined, "jump");
      return;
    }
    if (!this.synced || this.loadingOlder) return; // a page is on its way: onHistory calls again
    const oldest = this.bySeq.size ? Math.min(...this.bySeq.keys()) : Infinity;
    if (this.hasMore && oldest > seq) {
      this.loadOlder(MAX_PAGE);
      return;
    }
    this.jumpTarget = null;
    this.showError(gettext("That message is not there any more: it was deleted or removed."), undefined, "jump");
  }

  /** Scroll `node` into the middle of the timeline, focus it and highlight it briefly. */
  reveal(node) {
    const list = this.timeline.list;
    const offset = node.getBoundingClientRect().top - list.getBoundingClientRect().top;
    list.scrollTop += offset - (list.clientHeight - node.offsetHeight) / 2;
    node.tabIndex = -1;
    node.focus({ preventScroll: true });
    node.classList.remove("jump-target");
    void node.offsetWidth; // restart the highlight's animation when jumping to it again
    node.classList.add("jump-target");
    node.addEventListener("animationend", () => node.classList.remove("jump-target"), { once: true });
    this.updateJump();
  }

  /** Show the user's message (and files) as pending and queue it in the socket's outbox (chat/outbox.js). */
  send(text, type, files = []) {
    const item = { room: this, text, type, files, state: "queued", el: pendingElement(text, type, this.ctx.me) };
    addFiles(item.el, { message: text, files });
    if (this.replyTo != null) item.replyTo = this.replyTo;
    cancelReply(this);
    this.typingSent = 0; // the message ends the others' indicator: typing again shows at once
    if (this.errorKind === "compose") this.hideError();
    this.pending.push(item);
    this.timeline.mutate(() => this.timeline.insert(item.el, Infinity), true);
    this.ctx.outbox.add(item);
  }

  /** True once the room is joined and the replay is done: its queued messages may go out. */
  canSend() {
    return this.joined && !this.replayLeft && !this.removed;
  }

  /** The room may send again (joined, replay done): let the outbox send its queued messages. */
  flush() {
    this.ctx.outbox.pump();
  }

  // --- frames from the server -------------------------------------------

  /** The join reply: fetch the first page, or expect the replay after `since`. */
  onJoined(frame) {
    this.joined = true;
    this.joining = false;
    this.commandWorked();
    this.setState("joined", "");
    // A direct conversation's title is the page's (its other members' names), not the stored one.
    if (frame.kind !== "direct" && frame.title && frame.title !== this.title) this.setTitle(frame.title);
    this.replayLeft = frame.replayed || 0;
    if (this.joinedSince > frame.last_seq) {
      // We know seqs the server does not (a restored database): start over.
      this.clear();
      this.synced = false;
      this.joinedSince = undefined;
    }
    if (this.joinedSince === undefined) {
      this.knownSeq = frame.last_seq;
      this.divider?.remove();
      this.divider = null;
      const read = frame.read_seq ?? frame.last_seq;
      this.firstUnread = read < frame.last_seq ? read + 1 : null;
      this.loadOlder();
    } else if (frame.truncated) {
      // Too much was missed: show only the replayed newest messages; older ones page in on scroll.
      this.clear();
      this.knownSeq = frame.last_seq - frame.replayed;
      this.hasMore = this.knownSeq > 0;
      this.updateTop();
    }
    if (!this.replayLeft) this.flush();
  }

  /** A live or replayed message frame. */
  onMessage(frame) {
    if (!this.joined) return;
    const replaying = this.replayLeft > 0 && frame.seq != null;
    if (replaying) this.replayLeft--;
    this.show([frame], true);
    if (frame.seq != null && frame.seq > this.knownSeq + 1) this.fillGap();
    if (replaying && !this.replayLeft) this.flush();
  }

  /** A change frame (edit, delete, react) in the room's stream: apply it; its seq is received. */
  onChange(frame) {
    if (!this.joined) return;
    const replaying = this.replayLeft > 0;
    if (replaying) this.replayLeft--;
    if (frame.seq > this.knownSeq) this.changeSeqs.add(frame.seq);
    applyChange(this, frame);
    this.advanceKnown();
    if (frame.seq > this.knownSeq + 1) this.fillGap();
    if (replaying && !this.replayLeft) this.flush();
  }

  /** The reply to an edit, delete or react with a ref. */
  onChanged(frame, req) {
    this.commandWorked();
    changeDone(this, frame, req);
  }

  /** A history reply, for the first page, an older page or a gap. */
  onHistory(frame, req) {
    this.commandWorked();
    const added = this.show(frame.messages || [], false);
    if (req.kind === "gap") {
      this.gapFilling = false;
      if (!added) this.skipGap(req.next);
      this.fillGap();
      return;
    }
    this.loadingOlder = false;
    this.hasMore = frame.has_more;
    if (req.kind === "initial") this.synced = true;
    this.updateTop();
    if (this.jumping) this.jumpToUnread();
    if (this.jumpTarget != null) return this.continueJump();
    // Keep paging while the list is too short to scroll (so scrolling up can't ask for more).
    if (this.hasMore && this.timeline.underfilled()) this.loadOlder();
  }

  /** The reply to a `send` with a ref: the message is stored as `seq`. */
  onSent(frame, req) {
    this.commandWorked();
    this.stored(req.item, frame.seq);
  }

  /** `item` is stored as `seq`: done, or waiting only for its message frame. */
  stored(item, seq) {
    if (!this.pending.includes(item)) return;
    item.seq = seq;
    if (this.bySeq.has(seq)) this.removePending(item);
    else {
      item.state = "sent";
      this.renderPending(item);
    }
    this.ctx.outbox.sent(item);
  }

  /** An error frame caused by one of this room's commands. */
  onError(frame, req) {
    const text = errorText(frame);
    if (CHANGE_KINDS.has(req.kind)) {
      changeFailed(this, req);
      this.showError(text, frame.detail);
      return;
    }
    if (frame.error === "RATE_LIMITED" && req.kind !== "send" && req.kind !== "removed") {
      this.retryLater(req, frame.retry_after);
      return;
    }
    if (req.kind === "send") {
      const item = req.item;
      if (!this.pending.includes(item)) return;
      // Too fast: wait and send again, in order (the outbox holds every later message too).
      if (frame.error === "RATE_LIMITED") return this.ctx.outbox.refused(item, frame.retry_after);
      // Stored, only its live delivery failed: it reaches the room when delivery is back.
      if (frame.stored_seq != null) return this.stored(item, frame.stored_seq);
      item.state = "failed";
      item.error = text;
      item.detail = frame.detail;
      this.ctx.outbox.failed(item);
      return;
    }
    if (req.kind === "gap") {
      this.gapFilling = false;
      this.skipGap(req.next);
      return;
    }
    if (req.kind === "join" || req.kind === "removed") {
      // Not in the room (any more): queued messages cannot go out; keep their text.
      this.joined = this.joining = false;
      this.removed = req.kind === "removed";
      this.setState("error", this.removed ? gettext("Removed") : gettext("Not joined"));
      if (this.removed) this.composer.disable(gettext("You are no longer in this room."));
      for (const item of this.pending) {
        if (item.state === "queued" || item.state === "unsure") {
          item.state = "failed";
          item.error = text;
          this.renderPending(item);
        }
      }
    }
    this.loadingOlder = false;
    this.updateTop();
    this.showError(text, frame.detail);
  }

  /**
   * A join or history page refused for the user's budget (many rooms, quick reconnects):
   * ask again after `retryAfter` seconds instead of giving up, so nothing is skipped.
   */
  retryLater(req, retryAfter) {
    const delay = 1000 * (retryAfter || 1);
    if (req.kind === "join") {
      this.joining = false;
      this.setState("joining", gettext("Waiting to join…"));
      setTimeout(() => this.joined || this.joining || this.closed || this.join(), delay);
    } else if (req.kind === "gap") {
      this.gapFilling = false;
      setTimeout(() => this.closed || this.fillGap(), delay);
    } else {
      this.loadingOlder = false;
      this.updateTop();
      setTimeout(() => this.closed || this.loadOlder(), delay);
    }
  }

  /** A presence frame: who is in the room. */
  onPresence(frame) {
    this.members.update(frame);
  }

  /** A typing frame: someone else is typing here. */
  onTyping(frame) {
    this.typing.add(frame.username, frame.expires_in);
  }

  /** A mention frame for this room: highlight message `seq` (now, or when it is shown). */
  onMention(seq) {
    this.mentioned.add(seq);
    const node = this.bySeq.get(seq);
    if (node && node.dataset.deleted !== "true") this.timeline.mutate(() => node.classList.add("mention"));
  }

  /** The socket closed: everything in flight is unknown until the re-join. */
  onDisconnect() {
    this.members.clear();
    this.typing.clear();
    this.joined = this.joining = this.loadingOlder = this.gapFilling = false;
    this.replayLeft = 0;
    changesDisconnected(this);
    for (const item of this.pending) {
      if (item.state === "sending") item.state = "unsure"; // maybe stored: the replay will tell
      this.renderPending(item);
    }
    this.setState("disconnected", ""); // the top bar says it, once for every pane
    this.updateTop();
  }

  /** Report the newest message read when it is in view and past the known read position. */
  checkRead() {
    if (this.joined && this.maxSeq > this.ctx.readSeq(this.id) && this.inView()) {
      this.ctx.markRead(this, this.maxSeq);
    }
  }

  /** Remove the pane. */
  destroy() {
    this.closed = true;
    this.ctx.outbox.dropRoom(this);
    this.observer.disconnect();
    this.pane.remove();
  }

  /** Put the keyboard focus into the composer. */
  focus() {
    this.composer.focus();
  }

  // --- showing messages -------------------------------------------------

  /** Show message frames (skipping seqs already shown); returns how many new stored messages. */
  show(frames, live) {
    let added = 0;
    let notify = 0;
    const shown = [];
    this.timeline.mutate(() => {
      for (const frame of frames) {
        if (frame.seq == null) {
          // Ephemeral notices (enter, leave) go after everything stored so far.
          const key = Math.max(this.knownSeq, this.maxSeq) + 0.5;
          this.timeline.insert(messageElement(frame, this.ctx.me), key);
          continue;
        }
        if (this.bySeq.has(frame.seq)) continue;
        const node = messageElement(frame, this.ctx.me);
        addFiles(node, frame);
        decoratePost(this, node, frame);
        if (this.mentioned.has(frame.seq) && !frame.deleted) node.classList.add("mention");
        this.bySeq.set(frame.seq, node);
        shown.push(frame);
        this.maxSeq = Math.max(this.maxSeq, frame.seq);
        this.timeline.insert(node, frame.seq);
        added++;
        this.confirmPending(frame);
        if (live && frame.username !== this.ctx.me && frame.msg_type < 4) notify++;
      }
      this.placeDivider();
    });
    for (const frame of shown) {
      this.ctx.seen(this.id, frame.seq, frame.username === this.ctx.me);
      if (live) this.typing.remove(frame.username);
      if (!frame.reply_to) refreshQuotes(this, frame.seq); // replies shown before the post they quote
    }
    this.advanceKnown();
    if (added && this.timeline.top.dataset.state === "start") this.updateTop();
    if (notify) this.timeline.announceNew();
    this.updateJump();
    this.checkRead();
    return added;
  }

  /** Put the "New messages" divider before the first unread message once that part is shown; call inside mutate. */
  placeDivider() {
    if (this.firstUnread == null || this.divider?.isConnected) return;
    const oldest = Math.min(...this.bySeq.keys());
    if (!(oldest <= this.firstUnread)) return;
    this.divider = el("li", "unread-divider", gettext("New messages"));
    this.divider.setAttribute("role", "separator");
    this.divider.tabIndex = -1;
    this.timeline.insert(this.divider, this.firstUnread - 0.75);
  }

  /** Offer "Jump to first unread" while the divider is not shown or scrolled above the view. */
  updateJump() {
    let show = false;
    if (this.firstUnread != null && this.bySeq.size) {
      const d = this.divider;
      const top = this.timeline.list.getBoundingClientRect().top;
      show = !d?.isConnected || d.getBoundingClientRect().bottom <= top;
    }
    if (this.jumpButton.hidden === show) this.jumpButton.hidden = !show;
  }

  /** Forget every stored message shown (pending ones stay). */
  clear() {
    const stale = this.timeline.list.querySelectorAll(".message:not(.pending)");
    this.timeline.mutate(() => {
      stale.forEach((node) => node.remove());
      this.divider?.remove(); // put back when its place is shown again
    }, true);
    this.bySeq.clear();
    this.maxSeq = 0;
  }

  confirmPending(frame) {
    if (frame.username !== this.ctx.me) return;
    const item =
      this.pending.find((p) => p.seq === frame.seq) ||
      this.pending.find((p) => p.state === "unsure" && p.text === frame.message && sameFiles(p.files, frame.files));
    if (item) this.removePending(item);
  }

  removePending(item) {
    this.pending.splice(this.pending.indexOf(item), 1);
    this.timeline.mutate(() => item.el.remove());
    this.ctx.outbox.remove(item);
  }

  skipGap(next) {
    // The missing messages are gone (e.g. purged), or were changes (history has posts only).
    this.knownSeq = Math.max(this.knownSeq, next - 1);
    this.advanceKnown();
  }

  /** Move knownSeq over every seq received after it, posts and changes alike. */
  advanceKnown() {
    while (this.bySeq.has(this.knownSeq + 1) || this.changeSeqs.has(this.knownSeq + 1)) this.knownSeq++;
    for (const seq of this.changeSeqs) if (seq <= this.knownSeq) this.changeSeqs.delete(seq);
  }

  /** Show `item`'s state under it (chat/outbox.js). */
  renderPending(item) {
    renderPending(item, {
      connected: this.joined,
      held: this.ctx.outbox.held,
      mutate: (change) => this.timeline.mutate(change),
      onRetry: () => {
        item.state = "queued";
        this.ctx.outbox.pump();
      },
      onEdit: () => {
        this.removePending(item);
        this.composer.restore(item.text, item.files);
      },
    });
  }

  inView() {
    const page = document.visibilityState === "visible" && document.hasFocus();
    return page && this.visible && this.timeline.atBottom();
  }

  updateTop() {
    let state = "start";
    let content = this.bySeq.size
      ? interpolate(gettext("This is the beginning of %(room)s."), { room: this.title })
      : gettext("No messages yet. Say hello!");
    if (this.loadingOlder || (!this.synced && this.pane.dataset.state !== "error")) {
      state = "loading";
      content = gettext("Loading messages…");
    } else if (!this.synced || this.hasMore) {
      state = "more";
      content = button("load-older", gettext("Load older messages"), () => this.loadOlder());
      content.disabled = !this.joined;
    }
    this.timeline.setTop(state, content);
  }

  // --- header and errors ----------------------------------------------------

  setState(state, text) {
    this.pane.dataset.state = state;
    this.stateEl.textContent = text;
  }

  setTitle(title) {
    this.title = title;
    this.titleEl.textContent = title;
    this.timeline.setTitle(title);
    this.closeButton.setAttribute("aria-label", closeLabel(title));
    this.composer.setTitle(title);
    this.members.list.setAttribute("aria-label", interpolate(gettext("Members of %(room)s"), { room: title }));
  }

  /** Show an error above the timeline; `kind` says what it is about, so the right success clears it. */
  showError(text, detail, kind = "command") {
    this.errorKind = kind;
    const close = button("error-close", "×", () => this.hideError(), gettext("Dismiss"));
    const message = el("span", "error-text", text);
    if (detail) message.append(" ", el("small", "error-detail", detail));
    this.timeline.mutate(() => {
      this.errorBox.replaceChildren(message, close);
      this.errorBox.hidden = false;
    });
  }

  /** A command of this room succeeded: an error from an earlier one no longer applies. */
  commandWorked() {
    if (this.errorKind !== "compose") this.hideError(); // that one goes with the text in the box
  }

  hideError() {
    this.errorKind = null;
    if (this.errorBox.hidden) return;
    this.timeline.mutate(() => {
      this.errorBox.hidden = true;
      this.errorBox.replaceChildren();
    });
  }
}
