// What a user can do to a post: the "⋯" actions menu (React, Reply, Edit, Delete), the emoji
// picker, editing in place, and the confirmation before a deletion. Only the widgets: what the
// actions do is chat/changes.js's.

import { gettext, interpolate } from "./i18n.js";
import { button, el } from "./render.js";

// The picker's quick choices; any other emoji can be pasted into its text field.
export const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
let openPopup = null; // the one actions menu or picker open on the page: {close}
let popups = 0; // numbers the popups' ids, for aria-controls

/** Close the open menu or picker, if any. */
export function closePopup() {
  openPopup?.close();
}

/**
 * Give post item `li` its "⋯" button. `actions(li)` lists what may be done to it now, as
 * [{name, label, run}], asked each time the menu opens (the edit window closes over time).
 */
export function addActions(li, actions) {
  const box = el("div", "msg-actions");
  const toggle = button("msg-actions-toggle", "⋯", () => (toggle.getAttribute("aria-expanded") === "true" ? closePopup() : openMenu()));
  toggle.setAttribute("aria-label", interpolate(gettext("Actions for the message from %(name)s"), { name: li.dataset.user }));
  toggle.title = gettext("Message actions");
  toggle.setAttribute("aria-expanded", "false");
  box.append(toggle);
  li.append(box);

  function openMenu() {
    const menu = el("div", "msg-menu");
    menu.setAttribute("role", "group");
    menu.setAttribute("aria-label", gettext("Message actions"));
    for (const { name, label, run } of actions(li)) {
      menu.append(
        button(`msg-action msg-${name}`, label, () => {
          closePopup();
          run(toggle);
        }),
      );
    }
    show(box, toggle, menu);
    menu.querySelector("button")?.focus();
  }
}

/** Show `popup` under `toggle` in `box`, the only one open; Escape or focus leaving closes it. */
function show(box, toggle, popup) {
  closePopup();
  popup.id = `msg-popup-${++popups}`;
  toggle.setAttribute("aria-controls", popup.id);
  toggle.setAttribute("aria-expanded", "true");
  box.classList.add("open");
  box.append(popup);
  const state = {
    close(refocus = false) {
      if (openPopup !== state) return;
      openPopup = null;
      popup.remove();
      box.classList.remove("open");
      toggle.setAttribute("aria-expanded", "false");
      toggle.removeAttribute("aria-controls");
      if (refocus) toggle.focus();
    },
  };
  openPopup = state;
  popup.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      state.close(true);
    }
  });
  box.addEventListener("focusout", (event) => {
    if (!box.contains(event.relatedTarget)) state.close();
  });
}

/**
 * The emoji picker for post item `li`, opened from `toggle` (its "⋯" button): the quick emoji and
 * a field for any other; `onPick(emoji)` gets the choice.
 */
export function openPicker(li, toggle, onPick) {
  const box = toggle.closest(".msg-actions");
  const picker = el("div", "emoji-picker");
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", gettext("React with an emoji"));
  const pick = (emoji) => {
    closePopup();
    toggle.focus();
    onPick(emoji);
  };
  const quick = el("div", "emoji-quick");
  for (const emoji of QUICK_EMOJI) {
    const choice = button("emoji-choice", emoji, () => pick(emoji), interpolate(gettext("React with %(emoji)s"), { emoji }));
    quick.append(choice);
  }
  const form = el("form", "emoji-other");
  const input = el("input", "emoji-input");
  input.type = "text";
  input.maxLength = 32;
  input.autocomplete = "off";
  input.placeholder = gettext("Other emoji");
  input.setAttribute("aria-label", gettext("Other emoji: paste or type one"));
  const add = el("button", "emoji-add", gettext("React"));
  add.type = "submit";
  form.append(input, add);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const emoji = input.value.trim();
    if (emoji) pick(emoji);
  });
  picker.append(quick, form);
  show(box, toggle, picker);
  quick.firstElementChild.focus();
}

/**
 * Edit post item `li` in place: its text in a box (Enter saves, Shift+Enter adds a line, Escape
 * cancels). `onSave(text)` sends it; the editor stays, read-only, until `done()` or `failed()`.
 * Returns {done, failed}.
 */
export function startEdit(li, text, { onSave, onCancel }) {
  stopEdit(li);
  const body = li.querySelector(".body");
  const editor = el("div", "msg-editor");
  const box = el("textarea", "msg-editor-input");
  box.value = text;
  box.rows = Math.min(8, text.split("\n").length);
  box.setAttribute("aria-label", gettext("Edit message"));
  const hint = el("span", "msg-editor-hint", gettext("Enter saves, Escape cancels"));
  hint.id = `msg-editor-hint-${++popups}`;
  box.setAttribute("aria-describedby", hint.id);
  const save = button("msg-editor-save", gettext("Save"), () => submit());
  const cancel = button("msg-editor-cancel", gettext("Cancel"), () => finish(true));
  editor.append(box, hint, save, cancel);
  body.hidden = true;
  li.querySelector(".show-more")?.setAttribute("hidden", "");
  body.after(editor);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);

  function submit() {
    if (box.readOnly) return;
    const value = box.value;
    if (!value.trim() && !li.classList.contains("has-files")) return; // a post of files may lose its text
    if (value === text) return finish(true); // nothing changed
    box.readOnly = true;
    editor.classList.add("saving");
    onSave(value);
  }
  function finish(cancelled) {
    stopEdit(li);
    if (cancelled) onCancel();
  }
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish(true);
    }
  });
  return {
    done: () => finish(false),
    failed: () => {
      box.readOnly = false; // the text stays, to be fixed or cancelled
      editor.classList.remove("saving");
      box.focus();
    },
  };
}

/** Close the editor of `li`, if open, and show its text again. */
export function stopEdit(li) {
  const editor = li.querySelector(".msg-editor");
  if (!editor) return;
  editor.remove();
  const body = li.querySelector(".body");
  if (body) body.hidden = !li.text && li.classList.contains("has-files"); // files alone: no empty body
  li.querySelector(".show-more")?.removeAttribute("hidden");
}

/** The "(edited)" mark after the time of post item `li`; its title says when. */
export function markEdited(li, edited) {
  let mark = li.querySelector(".edited-mark");
  if (!mark) {
    mark = el("span", "edited-mark", gettext("(edited)"));
    li.querySelector(".meta").append(" ", mark);
  }
  const when = Date.parse(edited);
  mark.title = interpolate(gettext("Edited %(time)s"), { time: Number.isNaN(when) ? edited : fullDate.format(when) });
}

/** Ask before deleting a post; resolves to true when the user confirms. */
export function confirmDelete(author, text) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const node = el("dialog", "room-dialog confirm-delete");
    const title = el("h2", "dialog-title", gettext("Delete this message?"));
    title.id = "confirm-delete-title";
    node.setAttribute("aria-labelledby", title.id);
    const lead = el("p", "dialog-lead", gettext("It is deleted for everyone and cannot be restored."));
    const quote = el("blockquote", "confirm-delete-quote");
    quote.append(el("strong", null, author), " ", text.length > 200 ? `${text.slice(0, 200)}…` : text);
    const actions = el("div", "dialog-actions");
    let answer = false;
    const cancel = button("dialog-cancel", gettext("Cancel"), () => node.close());
    const confirm = button("dialog-submit dialog-danger", gettext("Delete"), () => {
      answer = true;
      node.close();
    });
    actions.append(cancel, confirm);
    node.append(title, lead, quote, actions);
    node.addEventListener("close", () => {
      node.remove();
      if (back?.isConnected) back.focus();
      resolve(answer);
    });
    document.body.append(node);
    node.showModal();
    cancel.focus();
  });
}
