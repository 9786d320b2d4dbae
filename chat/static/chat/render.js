// Building DOM for messages and errors. User text only ever goes through textContent; formatted
// messages are rebuilt element by element from an allow-list (appendFormatted), never innerHTML.

import { timeElement } from "./dates.js";
import { gettext } from "./i18n.js";
import { avatar, personButton } from "./people.js";

export const TYPE_CLASS = ["msg-normal", "msg-warning", "msg-alert", "msg-muted", "msg-enter", "msg-leave"];
// The names of the message types (msg_type 0-3), as the staff's type menu and the label show them.
export const TYPE_NAME = [gettext("Message"), gettext("Warning"), gettext("Alert"), gettext("Muted")];

// What each protocol error code means to the person (the codes themselves are never shown).
const ERROR_TEXT = {
  USER_HAS_TO_LOGIN: gettext("Your session has ended. Taking you to the login page…"),
  ROOM_INVALID: gettext("This room does not exist (any more)."),
  ROOM_ACCESS_DENIED: gettext("You are not allowed in this room."),
  BAD_REQUEST: gettext("The server did not understand that request."),
  UNKNOWN_COMMAND: gettext("The server did not understand that request."),
  MESSAGE_TOO_LONG: gettext("This message is too long."),
  MESSAGE_INVALID: gettext("That message no longer exists."),
  EDIT_DENIED: gettext("You cannot change that message: it is not yours, or the time to change it is over."),
  RATE_LIMITED: gettext("You are going too fast. Wait a moment, then try again."),
  TOO_MANY_ROOMS: gettext("You have too many rooms open. Leave one first."),
  TOO_MANY_CONNECTIONS: gettext("You have too many chat tabs open. Close one, then reload."),
  SERVICE_UNAVAILABLE: gettext("Live delivery is down for a moment. Try again shortly."),
  SERVER_ERROR: gettext("Something went wrong on the server. Try again."),
  FILE_INVALID: gettext("An attached file is gone or already posted. Remove it and send again."),
  FILE_TOO_LARGE: gettext("This file is too large."),
  FILE_TYPE_REFUSED: gettext("Files of this type cannot be shared here."),
  UPLOAD_QUOTA_EXCEEDED: gettext("You have uploaded too much today. Try again later."),
};

// Enter and leave notices (msg_type 4, 5): the frame's English text is the same for everyone, so
// each page writes the sentence in its own language around the person's name.
const NOTICE_TEXT = { 4: gettext("%(name)s joined the room"), 5: gettext("%(name)s left the room") };

/** Plain-language text for an error frame, in the page's language. */
export function errorText(frame) {
  return ERROR_TEXT[frame.error] || gettext("Something went wrong.");
}

/** Create an element with optional class names and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** A type="button" button running `onClick`; `label` names it for screen readers when given. */
export function button(className, text, onClick, label) {
  const node = el("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  if (label) node.setAttribute("aria-label", label);
  return node;
}

/** Count characters as the server does (code points, not UTF-16 units). */
export function charCount(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

// http(s):// URLs, and bare www. names (taken as https://); what follows "www." must be a name.
const URL_RE = /\b(?:https?:\/\/|www\.(?=[\p{L}\p{N}]))[^\s<>"]+/giu;

/** The link target of a URL found in text, or null when it is not a safe http(s) URL. */
function linkTarget(url) {
  let href;
  try {
    href = new URL(/^www\./i.test(url) ? `https://${url}` : url);
  } catch {
    return null;
  }
  return href.protocol === "http:" || href.protocol === "https:" ? href.href : null;
}

/** Append `text` to `parent`, turning http(s) URLs and www. names into safe links. */
export function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0].replace(/[.,;:!?'")\]}]+$/, "");
    // Keep a closing parenthesis that belongs to the URL, e.g. wiki links.
    const tail = match[0].slice(url.length);
    if (tail.startsWith(")") && url.split("(").length > url.split(")").length) url += ")";
    const href = linkTarget(url);
    if (href === null) continue;
    parent.append(text.slice(last, match.index));
    const a = el("a", null, url);
    a.href = href;
    a.target = "_blank";
    // nofollow: links posted by users earn no ranking from this page.
    a.rel = "noopener noreferrer nofollow";
    parent.append(a);
    last = match.index + url.length;
  }
  parent.append(text.slice(last));
}

// Formatted messages: the server sends sanitized HTML (chat/markup.py). It is parsed in an inert
// document (nothing loads, nothing runs) and rebuilt here from the same allow-list, so even HTML
// that got past the server's sanitizer cannot add a tag, an attribute or a link scheme. The CSP
// (no inline script or style) is the third line.
const FORMAT_TAGS = new Set(["P", "BR", "EM", "STRONG", "DEL", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A"]);
const LINK_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The href of a formatted link, or null unless it is an absolute http(s) or mailto URL. */
function formattedHref(value) {
  try {
    const url = new URL(value); // no base: a relative URL throws
    return LINK_SCHEMES.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** Copy the allowed part of `source`'s children into `target`; bare URLs in text become links. */
function copyFormatted(source, target, inLinkOrCode) {
  for (const node of source.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      if (inLinkOrCode) target.append(node.data);
      else appendLinkified(target, node.data);
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue; // comments and the like
    if (!FORMAT_TAGS.has(node.tagName)) {
      target.append(node.textContent); // an unknown element shows as its text, never as markup
      continue;
    }
    // A link whose URL the server dropped (e.g. a relative one) shows as its text in a span.
    const href = node.tagName === "A" ? formattedHref(node.getAttribute("href") || "") : null;
    const tag = node.tagName === "A" && href === null ? "span" : node.tagName.toLowerCase();
    const copy = document.createElement(tag);
    if (href !== null) {
      copy.href = href;
      copy.target = "_blank";
      copy.rel = "noopener noreferrer nofollow";
    } else if (node.tagName === "OL" && /^[0-9]{1,9}$/.test(node.getAttribute("start") || "")) {
      copy.start = Number(node.getAttribute("start"));
    }
    copyFormatted(node, copy, inLinkOrCode || ["A", "CODE", "PRE"].includes(node.tagName));
    target.append(copy);
  }
}

/** Append a message's sanitized `html` to `parent` as elements (see FORMAT_TAGS). */
export function appendFormatted(parent, html) {
  const inert = new DOMParser().parseFromString(html, "text/html");
  copyFormatted(inert.body, parent, false);
}

// As the server's MENTION_RE: "@name" not preceded by a word character or "@".
const MENTION_RE = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.@+-]*[\p{L}\p{N}_@+-])/gu;

/** True when `text` names `username` with "@username". */
export function mentions(text, username) {
  for (const match of text.matchAll(MENTION_RE)) if (match[1] === username) return true;
  return false;
}

/** The list item for one message frame; `me` marks the user's own messages. */
export function messageElement(frame, me) {
  const type = TYPE_CLASS[frame.msg_type] ? frame.msg_type : 0;
  const li = el("li", `message ${TYPE_CLASS[type]}`);
  li.dataset.user = frame.username;
  li.dataset.type = String(type);
  li.ts = Date.parse(frame.ts) || Date.now(); // for grouping
  if (frame.seq != null) li.dataset.seq = String(frame.seq);
  if (frame.username === me) li.classList.add("own");
  if (type >= 4) {
    // Enter and leave notices: one dim line, the name a button inside the translated sentence.
    const who = personButton(frame.username, "author", { tabStop: false });
    const [before, after] = NOTICE_TEXT[type].split("%(name)s");
    if (before) li.append(el("span", "body", before));
    li.append(who);
    if (after) li.append(el("span", "body", after));
    li.append(" ", timeElement(frame.ts));
    return li;
  }
  const meta = el("div", "meta");
  meta.append(avatar(frame.username), personButton(frame.username, "author", { tabStop: false }), " ", timeElement(frame.ts));
  if (type === 1 || type === 2) meta.append(" ", el("span", "type-label", TYPE_NAME[type]));
  li.append(meta, el("div", "body"));
  if (frame.deleted) markDeleted(li);
  else if (frame.html) {
    li.lastChild.classList.add("formatted");
    appendFormatted(li.lastChild, frame.html);
    collapseIfLong(li, frame.message);
  } else {
    appendLinkified(li.lastChild, frame.message);
    collapseIfLong(li, frame.message);
  }
  if (!frame.deleted && frame.username !== me && mentions(frame.message, me)) li.classList.add("mention");
  return li;
}

const COLLAPSE_LINES = 8; // a text with more lines (or more characters, below) may be folded
const COLLAPSE_CHARS = 400; // fewer characters never fill the folded height at any pane width
let bodies = 0; // numbers the folded bodies' ids, for aria-controls

// Hides "Show more" where the folded height shows everything (a short text in a wide pane).
const clipWatch = new ResizeObserver((entries) => {
  for (const { target } of entries) {
    const toggle = target.nextElementSibling;
    if (target.classList.contains("collapsed") && toggle?.classList.contains("show-more")) {
      toggle.hidden = target.scrollHeight <= target.clientHeight + 1;
    }
  }
});

/** Fold a long message body to a few lines, with a "Show more" / "Show less" button after it. */
function collapseIfLong(li, text) {
  if (text.split("\n").length <= COLLAPSE_LINES && charCount(text) <= COLLAPSE_CHARS) return;
  const body = li.querySelector(".body");
  body.id = `msg-body-${++bodies}`;
  body.classList.add("collapsed");
  const toggle = button("show-more", gettext("Show more"), () => {
    const folded = body.classList.toggle("collapsed");
    toggle.textContent = folded ? gettext("Show more") : gettext("Show less");
    toggle.setAttribute("aria-expanded", String(!folded));
    if (folded && li.getBoundingClientRect().top < li.parentElement.getBoundingClientRect().top) {
      li.scrollIntoView({ block: "start" }); // folding the text keeps its start in view
    }
  });
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", body.id);
  body.after(toggle);
  clipWatch.observe(body);
}

/** Turn a message item into a dimmed tombstone: no text, no reactions, no actions. */
export function markDeleted(li) {
  li.classList.add("msg-deleted");
  li.classList.remove("mention");
  li.dataset.deleted = "true";
  const body = li.querySelector(".body");
  if (body) body.textContent = gettext("This message was deleted.");
  if (body) body.classList.remove("formatted");
  if (body) body.classList.remove("collapsed");
  if (body) body.hidden = false;
  li.classList.remove("has-files");
  for (const extra of li.querySelectorAll(".show-more, .reactions, .msg-actions, .edited-mark, .msg-editor, .files")) {
    extra.remove();
  }
}

/** A pending (not yet confirmed) message item for the user's own text. */
export function pendingElement(text, msgType, me) {
  const li = messageElement({ msg_type: msgType, username: me, message: text }, me);
  li.classList.add("pending");
  li.append(el("div", "pending-status"));
  return li;
}
