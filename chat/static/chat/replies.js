// Replies: the composer's "Replying to …" banner, the quote of the answered post above a reply,
// whose quote jumps to the answered post (Room.jumpTo, shared with search results).

import { gettext, interpolate } from "./i18n.js";
import { apiUrl } from "./paths.js";
import { button, el } from "./render.js";

const QUOTE_CHARS = 80; // the quote shows this much of the answered post's first line

/** The first line of `text`, cut to QUOTE_CHARS characters with an ellipsis. */
export function firstLine(text) {
  const line = (text || "").split("\n", 1)[0];
  const chars = [...line];
  return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join("")}…` : line;
}

/** The banner above the composer while the user writes a reply; `onCancel` ends reply mode. */
export class ReplyBanner {
  constructor(onCancel) {
    this.element = el("div", "reply-banner");
    this.element.hidden = true;
    this.text = el("span", "reply-banner-text");
    this.text.id = `reply-banner-${Math.random().toString(36).slice(2)}`;
    const cancel = button("reply-cancel", "×", onCancel, gettext("Cancel reply"));
    cancel.title = gettext("Cancel reply (Escape)");
    this.element.append(this.text, cancel);
  }

  /** Show "Replying to ann: first words…" (or hide it: `post` null). */
  show(post) {
    this.element.hidden = !post;
    if (!post) return this.text.replaceChildren();
    const text = interpolate(gettext("Replying to %(name)s: %(text)s"), { name: post.user, text: firstLine(post.text) });
    this.text.textContent = text;
  }
}

/** The post `seq` of `room` as {user, text, deleted}: shown, or read once with a history request. */
function lookup(room, seq) {
  const node = room.bySeq.get(seq);
  if (node) return Promise.resolve(postOf(node));
  room.quoted ??= new Map();
  if (!room.quoted.has(seq)) {
    const url = apiUrl(`rooms/${room.id}/messages?before=${seq + 1}&limit=1`);
    const load = fetch(url, { credentials: "same-origin" })
      .then((reply) => (reply.ok ? reply.json() : null))
      .then((page) => {
        const frame = page?.messages?.find((m) => m.seq === seq);
        if (!frame) return null;
        const text = frame.message || (frame.files ?? []).map((info) => info.name).join(", ");
        return { user: frame.username, text, deleted: !!frame.deleted };
      })
      .catch(() => {
        room.quoted.delete(seq); // offline: try again the next time it is drawn
        return undefined;
      });
    room.quoted.set(seq, load);
  }
  return room.quoted.get(seq);
}

/** What a shown post item says: {user, text, deleted}; a post of files alone, their names. */
export function postOf(node) {
  let text = node.text ?? "";
  if (!text.trim() && node.querySelector(".files")) {
    text = [...node.querySelectorAll(".file-thumb img, .file-name")].map((part) => part.alt ?? part.textContent).join(", ");
  }
  return { user: node.dataset.user, text, deleted: node.dataset.deleted === "true" };
}

/** Fill a quote button with the answered post (author and first line), or say it is gone. */
function fillQuote(quote, post) {
  if (post === undefined) {
    quote.replaceChildren(el("span", "reply-quote-text", gettext("Loading the message it answers…")));
  } else if (!post || post.deleted) {
    quote.replaceChildren(el("span", "reply-quote-text", gettext("The message it answers was deleted.")));
  } else {
    quote.replaceChildren(el("span", "reply-quote-author", post.user), " ", el("span", "reply-quote-text", firstLine(post.text)));
  }
  const what = post ? interpolate(gettext("Go to the message from %(name)s that this answers"), { name: post.user }) : gettext("Go to the message this answers");
  quote.setAttribute("aria-label", `${what}: ${quote.textContent}`);
}

/** Put the quote of the post it answers above reply item `li` (`seq` = its reply_to). */
export function addQuote(room, li, seq) {
  const quote = button("reply-quote", null, () => room.jumpTo(seq));
  quote.dataset.target = String(seq);
  li.querySelector(".meta").after(quote);
  refreshQuote(room, quote);
}

/** Redraw one quote from what is known of its post now. */
function refreshQuote(room, quote) {
  const seq = Number(quote.dataset.target);
  const node = room.bySeq.get(seq);
  if (node) return fillQuote(quote, postOf(node));
  fillQuote(quote, undefined);
  lookup(room, seq).then((post) => quote.isConnected && room.timeline.mutate(() => fillQuote(quote, post)));
}

/** Post `seq` changed (edited, deleted) or was shown: redraw the quotes of it in `room`. */
export function refreshQuotes(room, seq) {
  room.quoted?.delete(seq);
  for (const quote of room.timeline.list.querySelectorAll(`.reply-quote[data-target="${seq}"]`)) {
    refreshQuote(room, quote);
  }
}
