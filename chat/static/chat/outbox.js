// The socket's outbox: the user's messages, of every room, go out one at a time in the order
// written. A send refused for the rate limit holds it and every later one until retry_after, then
// they go out again in the same order, so a refusal can never let a later message overtake.
// Also how each pending message shows its state.

import { gettext, interpolate } from "./i18n.js";
import { button, el } from "./render.js";

export class Outbox {
  /** `command(room, obj, kind, extra)` sends a command and returns its ref (null when offline). */
  constructor(command) {
    this.command = command;
    this.queue = []; // pending items of every room, oldest first: {room, text, type, files, state, ref, seq}
    this.inFlight = null; // the one send whose reply has not come yet
    this.heldUntil = 0; // ms since the epoch: nothing is sent before this (the server said when)
    this.timer = null;
  }

  /** True while a refusal holds the queue. */
  get held() {
    return Date.now() < this.heldUntil;
  }

  /** Queue `item` (of `item.room`) behind everything written before it, and send what can go. */
  add(item) {
    this.queue.push(item);
    this.pump();
  }

  /** Forget `item` (confirmed, or taken back to edit). */
  remove(item) {
    const index = this.queue.indexOf(item);
    if (index >= 0) this.queue.splice(index, 1);
    if (this.inFlight === item) this.inFlight = null;
    this.pump();
  }

  /** Forget every item of `room` (its pane was closed). */
  dropRoom(room) {
    this.queue = this.queue.filter((item) => item.room !== room);
    if (this.inFlight?.room === room) this.inFlight = null;
    this.pump();
  }

  /** The server stored the in-flight item (a `sent` reply): the next one may go. */
  sent(item) {
    if (this.inFlight === item) this.inFlight = null;
    this.pump();
  }

  /** The server refused `item` for the rate limit: it and every later one wait `retryAfter` s. */
  refused(item, retryAfter) {
    if (this.inFlight === item) this.inFlight = null;
    item.state = "queued";
    this.heldUntil = Date.now() + 1000 * (retryAfter || 1);
    this.pump();
  }

  /** `item` failed for good (the user may retry it): the others go on. */
  failed(item) {
    if (this.inFlight === item) this.inFlight = null;
    this.pump();
  }

  /** The socket closed: whether the in-flight item was stored is unknown until the re-join. */
  disconnected() {
    if (this.inFlight) this.inFlight.state = "unsure"; // maybe stored: the replay will tell
    this.inFlight = null;
    clearTimeout(this.timer);
  }

  /** Send the oldest item that may go now, unless one is in flight or a refusal holds the queue. */
  pump() {
    clearTimeout(this.timer);
    const wait = this.heldUntil - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => this.pump(), wait);
    } else if (!this.inFlight) {
      const waitingRooms = new Set(); // a room whose earlier item cannot go holds its later ones
      for (const item of this.queue) {
        if (item.state !== "queued" && item.state !== "unsure") continue;
        if (waitingRooms.has(item.room) || !item.room.canSend()) {
          waitingRooms.add(item.room);
          continue;
        }
        const { room } = item;
        const cmd = { command: "send", room: room.id, message: item.text, msg_type: item.type };
        if (item.replyTo != null) cmd.reply_to = item.replyTo;
        if (item.files?.length) cmd.files = item.files.map((info) => info.id);
        item.ref = this.command(room, cmd, "send", { item });
        if (item.ref == null) break; // offline: everything waits for the re-join
        item.state = "sending";
        this.inFlight = item;
        break;
      }
    }
    for (const item of this.queue) item.room.renderPending(item);
  }
}

/**
 * Show a pending `item`'s state under it: sending, waiting (and why), or failed with Retry and
 * Edit. `connected`: its room is joined; `held`: the outbox waits after a refusal.
 */
export function renderPending(item, { connected, held, mutate, onRetry, onEdit }) {
  const status = item.el.querySelector(".pending-status");
  const waiting = item.state === "queued" || item.state === "unsure";
  let text = gettext("Sending…");
  if (item.state === "failed") text = interpolate(gettext("Not sent: %(reason)s"), { reason: item.error });
  else if (waiting && !connected) text = gettext("Waiting for connection…");
  else if (item.state === "queued" && held) text = gettext("Sending too fast, so it waits a moment…");
  if (item.el.dataset.pendingState === item.state && item.shown === text) return; // unchanged
  item.el.dataset.pendingState = item.state;
  item.shown = text;
  if (item.state !== "failed") {
    mutate(() => {
      item.el.classList.remove("failed");
      status.textContent = text;
    });
    return;
  }
  const retry = button("retry", gettext("Retry"), onRetry);
  const edit = button("edit", gettext("Edit"), onEdit);
  edit.title = gettext("Move the text back into the message box");
  mutate(() => {
    item.el.classList.add("failed");
    const error = el("span", "send-error", text);
    if (item.detail) error.title = item.detail; // the server's words, for whoever wants them
    status.replaceChildren(error, " ", retry, " ", edit);
  });
}
