// The message box of a pane: Enter sends, Shift+Enter adds a line, a counter near the limit,
// and the files attached to the next message (chat/uploads.js).

import { gettext, interpolate, ngettext } from "./i18n.js";
import { TYPE_NAME, charCount, el } from "./render.js";
import { Uploads, acceptFiles } from "./uploads.js";

const NEAR_LIMIT = 0.8; // show the length counter from this share of the limit
let helps = 0; // numbers the formatting hints' ids, for aria-controls

/** The formatting hint: each Markdown form the server renders (chat/markup.py), as typed. */
function formatHelp() {
  const help = el("div", "format-help");
  help.id = `format-help-${++helps}`;
  help.hidden = true;
  const list = el("ul", "format-help-list");
  const forms = [
    `**${gettext("bold")}**`,
    `_${gettext("italic")}_`,
    `~~${gettext("strikethrough")}~~`,
    `\`${gettext("code")}\``,
    `> ${gettext("quote")}`,
    `- ${gettext("list item")}`,
    `1. ${gettext("numbered item")}`,
    `[${gettext("link text")}](https://…)`,
  ];
  for (const form of forms) {
    const item = el("li");
    item.append(el("code", null, form));
    list.append(item);
  }
  const block = el("li");
  block.append(el("code", null, "```"), " ", gettext("on the lines before and after a code block"));
  list.append(block);
  help.append(list, el("p", "format-help-note", gettext("Shift+Enter starts a new line.")));
  return help;
}

/** Why a text over the limit cannot be sent. */
function tooLong(maxLength) {
  const text = ngettext(
    "A message may have at most %(max)s character.",
    "A message may have at most %(max)s characters.",
    maxLength,
  );
  return interpolate(text, { max: maxLength });
}

export class Composer {
  /**
   * Build the form; `onSend(text, msgType, files)` gets every message within the limit that has
   * text or finished uploads (`files`: their FileInfo list),
   * `onInput(text)` every edit (for the typing indicator), `onUpEmpty()` the Up arrow in the empty
   * box and `onEscape()` Escape (each returns true when it did something).
   */
  constructor(title, { isStaff, maxLength, maxBytes, maxFiles, onSend, onInvalid, onInput, onUpEmpty, onEscape }) {
    this.maxLength = maxLength;
    this.form = el("form", "composer");
    this.uploads = new Uploads({ maxBytes, maxFiles, onChange: () => this.update() });
    this.input = el("textarea", "composer-input");
    this.input.rows = 1;
    this.setTitle(title);
    this.button = el("button", "composer-send", gettext("Send"));
    this.button.type = "submit";
    this.button.disabled = true;
    this.counter = el("span", "char-count");
    this.counter.hidden = true;
    this.counter.setAttribute("aria-live", "polite");
    // Why Send waits: uploads still in flight.
    this.waiting = el("span", "upload-wait");
    this.waiting.id = `${this.uploads.input.id}-wait`;
    this.waiting.setAttribute("aria-live", "polite");
    this.button.setAttribute("aria-describedby", this.waiting.id);
    // Attach after the box: Shift+Tab from the box still reaches the newest messages (or the chips).
    this.form.append(this.uploads.list, this.input, this.uploads.input, this.uploads.button, this.button);
    if (isStaff) {
      // Staff may send warnings, alerts and muted messages.
      this.type = el("select", "composer-type");
      this.type.setAttribute("aria-label", gettext("Message type"));
      TYPE_NAME.forEach((name, value) => this.type.append(new Option(name, String(value))));
      this.form.append(this.type);
    }
    // A toggle for the formatting hint, so the box itself stays one clean line.
    this.help = formatHelp();
    this.helpToggle = el("button", "format-help-toggle", gettext("Formatting help"));
    this.helpToggle.type = "button";
    this.helpToggle.setAttribute("aria-expanded", "false");
    this.helpToggle.setAttribute("aria-controls", this.help.id);
    this.helpToggle.addEventListener("click", () => {
      this.help.hidden = !this.help.hidden;
      this.helpToggle.setAttribute("aria-expanded", String(!this.help.hidden));
    });
    this.form.append(this.helpToggle, this.waiting, this.counter, this.help);

    const submit = () => {
      const text = this.input.value;
      const files = this.uploads.ready;
      if (this.uploads.busy || this.input.disabled) return; // the button says why
      if (!text.trim() && !files.length) return;
      if (charCount(text) > maxLength) return onInvalid(tooLong(maxLength));
      const type = this.type ? Number(this.type.value) : 0;
      this.input.value = "";
      if (this.type) this.type.value = "0"; // a warning or alert is a deliberate, one-off choice
      this.uploads.clear();
      this.update();
      onSend(text.trim() ? text : "", type, files);
    };
    this.input.addEventListener("input", () => {
      this.update();
      onInput(this.input.value);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      } else if (event.key === "ArrowUp" && !this.input.value && !event.shiftKey && onUpEmpty?.()) {
        event.preventDefault(); // like Slack: edit your last message
      } else if (event.key === "Escape" && onEscape?.()) {
        event.preventDefault();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
  }

  /** The room was renamed: name it in the labels. */
  setTitle(title) {
    this.form.setAttribute("aria-label", interpolate(gettext("Write to %(room)s"), { room: title }));
    const prompt = interpolate(gettext("Message %(room)s"), { room: title });
    this.input.placeholder = prompt;
    this.input.setAttribute("aria-label", prompt);
  }

  /** Files may be dropped on `pane` and pasted into the box from now on. */
  acceptFiles(pane) {
    acceptFiles(pane, this.input, this.uploads, () => !this.input.disabled);
  }

  /**
   * Put `text` back into the box (before anything typed since), and `files` back as attachments,
   * e.g. to edit a failed message.
   */
  restore(text, files = []) {
    if (text) this.input.value = this.input.value ? `${text}\n${this.input.value}` : text;
    if (files.length) this.uploads.restore(files);
    this.update();
    this.focus();
  }

  /** Turn the box off for good, saying why in its placeholder. */
  disable(reason) {
    this.input.disabled = this.button.disabled = this.uploads.button.disabled = true;
    this.uploads.clear();
    this.input.placeholder = reason;
  }

  /** Move the keyboard focus into the box. */
  focus() {
    this.input.focus();
  }

  update() {
    const count = charCount(this.input.value);
    this.counter.hidden = count < this.maxLength * NEAR_LIMIT;
    this.counter.textContent = `${count} / ${this.maxLength}`;
    this.counter.classList.toggle("over", count > this.maxLength);
    const busy = this.uploads.busy;
    const empty = !this.input.value.trim() && !this.uploads.ready.length;
    this.button.disabled = this.input.disabled || busy || empty || count > this.maxLength;
    const wait = busy ? gettext("Waiting for the uploads to finish…") : "";
    if (this.waiting.textContent !== wait) this.waiting.textContent = wait;
    this.button.title = wait;
  }
}
