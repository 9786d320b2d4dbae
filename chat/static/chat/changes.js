// Edits, deletions, reactions and replies in a room's pane: the controls on each post, the
// commands they send, and applying the server's change frames (live, replayed after a resume).
// A change frame takes a seq in the room's stream like a post, but is never shown as a message
// and never counts as unread (chat/room.js counts its seq as received, for `since`).

import { closeLightboxOf } from "./attachments.js";
import { gettext } from "./i18n.js";
import { addActions, closePopup, confirmDelete, markEdited, openPicker, startEdit, stopEdit } from "./msgactions.js";
import { reacted, renderReactions } from "./reactions.js";
import { addQuote, postOf, refreshQuotes } from "./replies.js";
import { appendFormatted, appendLinkified, markDeleted } from "./render.js";

// Commands whose errors belong to a post's change, not to the room (room.js routes them here).
export const CHANGE_KINDS = new Set(["edit", "delete", "react"]);

/** True while post item `li` may still be edited or deleted by its author (the edit window). */
function inWindow(room, li) {
  const window = room.ctx.editWindow || 0;
  return !window || Date.now() - li.ts < window * 1000;
}

/** Put the text (and its rendered form, when the server sent one) into post item `li`. */
function setBody(li, text, html) {
  li.text = text;
  const body = li.querySelector(".body");
  body.replaceChildren();
  body.classList.remove("collapsed");
  li.querySelector(".show-more")?.remove();
  // `html` is the server's rendering (chat.markup), rebuilt from the allow-list; else plain text.
  body.classList.toggle("formatted", Boolean(html));
  if (html) appendFormatted(body, html);
  else appendLinkified(body, text);
  body.hidden = !text && li.classList.contains("has-files"); // an edit may empty a post of files
}

/** Give a stored post item `li` (from `frame`) its quote, "(edited)" mark, reactions and actions. */
export function decoratePost(room, li, frame) {
  li.text = frame.message ?? "";
  if (frame.seq == null || !(frame.msg_type < 4)) return;
  if (frame.reply_to) addQuote(room, li, frame.reply_to);
  if (frame.deleted) return;
  if (frame.edited) markEdited(li, frame.edited);
  renderReactions(li, frame.reactions, room.ctx.me, (emoji, on) => react(room, li, emoji, on));
  addActions(li, () => actionsFor(room, li));
}

/** The post's actions the user may take now. */
function actionsFor(room, li) {
  const mine = li.dataset.user === room.ctx.me;
  const list = [
    { name: "react", label: gettext("React…"), run: (toggle) => openPicker(li, toggle, (emoji) => react(room, li, emoji, !reacted(li, emoji, room.ctx.me))) },
    { name: "reply", label: gettext("Reply"), run: () => startReply(room, li) },
  ];
  if (mine && inWindow(room, li)) list.push({ name: "edit", label: gettext("Edit"), run: () => editPost(room, li) });
  if ((mine && inWindow(room, li)) || room.ctx.isStaff) {
    list.push({ name: "delete", label: gettext("Delete…"), run: () => deletePost(room, li) });
  }
  return list;
}

/** Send a change command for post `li`; false (with the error shown) when offline. */
function command(room, li, cmd, extra = {}) {
  const ref = room.joined ? room.ctx.command(room, { ...cmd, room: room.id, seq: Number(li.dataset.seq) }, cmd.command, { li, ...extra }) : null;
  if (ref == null) room.showError(gettext("Not connected. Try again when the connection is back."));
  return ref != null;
}

/** Put the user's `emoji` on post `li` (`on`) or take it off. */
function react(room, li, emoji, on) {
  command(room, li, { command: "react", emoji, on });
}

/** Edit post `li` in place. */
function editPost(room, li) {
  if (li.dataset.deleted === "true") return;
  const editor = startEdit(li, li.text ?? "", {
    onSave: (text) => {
      if (!command(room, li, { command: "edit", message: text }, { editor, text })) editor.failed();
    },
    onCancel: () => li.querySelector(".msg-actions-toggle")?.focus(),
  });
  li.editor = editor;
}

/** The socket closed: an edit being saved may or may not be stored; let the user save it again. */
export function changesDisconnected(room) {
  for (const node of room.timeline.list.querySelectorAll(".msg-editor.saving")) node.closest(".message")?.editor?.failed();
}

/** Up arrow in an empty composer: edit the user's newest post that may still be edited. */
export function editLast(room) {
  const seqs = [...room.bySeq.keys()].sort((a, b) => b - a);
  for (const seq of seqs) {
    const li = room.bySeq.get(seq);
    if (li.dataset.user !== room.ctx.me || li.dataset.deleted === "true" || !(Number(li.dataset.type) < 4)) continue;
    if (!inWindow(room, li)) return false;
    li.scrollIntoView({ block: "nearest" });
    editPost(room, li);
    return true;
  }
  return false;
}

/** Ask, then delete post `li`. */
async function deletePost(room, li) {
  if (await confirmDelete(li.dataset.user, li.text ?? "")) command(room, li, { command: "delete" });
}

/** Reply mode: the composer's next message answers post `li`. */
function startReply(room, li) {
  room.replyTo = Number(li.dataset.seq);
  room.replyBanner.show(postOf(li));
  room.composer.focus();
}

/** Leave reply mode (the reply was sent, or cancelled). */
export function cancelReply(room) {
  if (room.replyTo == null) return false;
  room.replyTo = null;
  room.replyBanner.show(null);
  return true;
}

/** The server's answer to an edit, delete or react with a ref: done (`seq` null: nothing changed). */
export function changeDone(room, frame, req) {
  if (req.kind !== "edit") return;
  const { li, editor, text } = req;
  editor.done();
  // The change frame may come after this reply: show the new text now (it brings the html).
  if (frame.seq != null && !(li.changeSeq >= frame.seq) && li.dataset.deleted !== "true") {
    room.timeline.mutate(() => setBody(li, text, ""));
  }
}

/** A change command was refused: say why; an edit keeps its text in the box. */
export function changeFailed(room, req) {
  if (req.kind === "edit") req.editor.failed();
}

/** Apply a change frame to the post it targets, if shown; a deleted post takes no more changes. */
export function applyChange(room, frame) {
  const li = room.bySeq.get(frame.target);
  if (!li || li.dataset.deleted === "true") return;
  if (li.changeSeq >= frame.seq) return; // already applied (replayed after a resume)
  li.changeSeq = frame.seq;
  room.timeline.mutate(() => {
    if (frame.change === "edit") {
      if (!li.querySelector(".msg-editor .msg-editor-input[readonly]")) stopEdit(li); // someone else's?
      setBody(li, frame.message ?? "", frame.html);
      markEdited(li, frame.edited ?? frame.ts);
    } else if (frame.change === "delete") {
      if (li.contains(document.activeElement)) closePopup();
      closeLightboxOf(li);
      stopEdit(li);
      li.text = "";
      markDeleted(li);
      if (room.replyTo === frame.target) cancelReply(room);
    } else if (frame.change === "react") {
      renderReactions(li, frame.reactions, room.ctx.me, (emoji, on) => react(room, li, emoji, on));
    }
  });
  if (frame.change !== "react") refreshQuotes(room, frame.target);
}
