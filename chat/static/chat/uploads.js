// The composer's attachments: files picked with "Attach files", dropped on the pane or pasted,
// each uploaded at once (POST <api>/uploads, one file per request, so each shows its own
// progress) and shown as a chip above the box until its message goes out. The server decides
// (size, sniffed type, quota); its `detail` is shown on the chip and the file is left out.

import { fileIcon, formatSize, paperclip } from "./attachments.js";
import { gettext, interpolate, ngettext } from "./i18n.js";
import { apiUrl } from "./paths.js";
import { button, el, errorText } from "./render.js";

let inputs = 0; // numbers the file inputs' ids

/** "Pasted image 2026-11-29 22.41.png": a name for a clipboard image, in local time. */
export function pastedName(type, now = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  const when = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}.${pad(now.getMinutes())}`;
  const ext = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp" }[type] || "png";
  return `${interpolate(gettext("Pasted image %(when)s"), { when })}.${ext}`;
}

/** The sentence for an upload the server refused (its own words when it sent some). */
function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

/** DELETE an upload of ours that no post took (best effort: purge_files is the fallback). */
function discard(id) {
  fetch(apiUrl(`uploads/${encodeURIComponent(id)}`), {
    method: "DELETE",
    headers: { "X-CSRFToken": csrfToken() },
  }).catch(() => {});
}

function refusal(xhr) {
  let body = null;
  try {
    body = JSON.parse(xhr.responseText);
  } catch {
    // not JSON (a proxy's error page): the status tells
  }
  if (body?.detail && body.error !== "SERVER_ERROR") return body.detail;
  if (body?.error) return errorText(body);
  if (xhr.status === 413) return errorText({ error: "FILE_TOO_LARGE" });
  return gettext("The upload failed. Try again.");
}

export class Uploads {
  /** The chips and the hidden file input; `onChange()` runs whenever an upload starts, ends or goes. */
  constructor({ maxBytes, maxFiles, onChange }) {
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
    this.onChange = onChange;
    this.items = []; // {name, size, type, state: "uploading" | "done" | "failed", info, finished, xhr, chip}
    this.finishes = 0; // numbers finished uploads in the order they finished
    this.list = el("ul", "uploads");
    this.list.setAttribute("aria-label", gettext("Attachments"));
    this.list.hidden = true;
    this.input = el("input", "attach-input");
    this.input.type = "file";
    this.input.multiple = true;
    this.input.hidden = true;
    this.input.id = `attach-input-${++inputs}`;
    this.input.tabIndex = -1; // the button is the way in
    this.input.addEventListener("change", () => {
      this.add([...this.input.files]);
      this.input.value = ""; // the same file may be picked again
    });
    this.button = button("attach", null, () => this.input.click(), gettext("Attach files"));
    this.button.append(paperclip());
    this.button.title = gettext("Attach files");
  }

  /** True while an upload is in flight (the message waits for it). */
  get busy() {
    return this.items.some((item) => item.state === "uploading");
  }

  /**
   * The FileInfo of every finished upload, in the order they finished: the server shows a post's
   * files in upload order, so the pending message looks like the stored one.
   */
  get ready() {
    const done = this.items.filter((item) => item.state === "done");
    return done.sort((a, b) => a.finished - b.finished).map((item) => item.info);
  }

  /** Upload each of `files` (File objects); one over the limits gets a chip saying why. */
  add(files) {
    for (const file of files) {
      const item = { name: file.name, size: file.size, type: file.type, state: "uploading" };
      const kept = this.items.filter((i) => i.state !== "failed").length;
      if (kept >= this.maxFiles) {
        const text = ngettext(
          "A message may have at most %(max)s file.",
          "A message may have at most %(max)s files.",
          this.maxFiles,
        );
        this.fail(item, interpolate(text, { max: this.maxFiles }));
      } else if (this.maxBytes && file.size > this.maxBytes) {
        this.fail(item, interpolate(gettext("This file is larger than %(max)s."), { max: formatSize(this.maxBytes) }));
      } else if (file.size === 0) {
        this.fail(item, gettext("This file is empty."));
      } else {
        this.upload(item, file);
      }
    }
  }

  /** Put finished uploads back as chips (a failed message taken back to edit). */
  restore(infos) {
    for (const info of infos) {
      const item = { name: info.name, size: info.size, type: info.type, state: "done", info, finished: ++this.finishes };
      this.items.push(item);
      this.draw(item);
    }
    this.changed();
  }

  /** Forget every chip (the message went out with the finished ones). */
  clear() {
    for (const item of this.items) item.xhr?.abort();
    this.items = [];
    this.list.replaceChildren();
    this.changed();
  }

  /** Remove `item`: an upload in flight is aborted. */
  remove(item) {
    const index = this.items.indexOf(item);
    if (index < 0) return;
    this.items.splice(index, 1);
    if (item.state === "uploading") item.xhr?.abort();
    // A finished upload no post will take is deleted now, not left for purge_files; if this
    // fails (the server away), purge_files removes it later.
    if (item.state === "done" && item.info?.id) discard(item.info.id);
    // The focus would be lost with the chip: the next chip's remove button, else the box's attach button.
    const next = this.items[index] ?? this.items[index - 1];
    const hadFocus = item.chip.contains(document.activeElement);
    item.chip.remove();
    if (hadFocus) (next?.chip.querySelector(".upload-remove") ?? this.button).focus();
    this.changed();
  }

  fail(item, text) {
    item.state = "failed";
    item.error = text;
    if (!this.items.includes(item)) this.items.push(item);
    this.draw(item);
    this.changed();
  }

  upload(item, file) {
    this.items.push(item);
    const xhr = new XMLHttpRequest(); // not fetch: only XHR reports upload progress
    item.xhr = xhr;
    xhr.open("POST", apiUrl("uploads"));
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && item.progress) item.progress.value = event.loaded / event.total;
    });
    xhr.addEventListener("load", () => {
      if (!this.items.includes(item)) return;
      if (xhr.status === 201) {
        try {
          item.info = JSON.parse(xhr.responseText);
        } catch {
          return this.fail(item, gettext("The upload failed. Try again."));
        }
        item.state = "done";
        item.finished = ++this.finishes;
        this.draw(item);
        this.changed();
      } else this.fail(item, refusal(xhr));
    });
    xhr.addEventListener("error", () => {
      if (this.items.includes(item)) this.fail(item, gettext("The upload failed: the server could not be reached."));
    });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
    this.draw(item);
    this.changed();
  }

  /** Draw (or redraw) `item`'s chip: icon, name, size, then progress, or the error. */
  draw(item) {
    const chip = el("li", "upload");
    chip.dataset.state = item.state;
    if (item.info) chip.dataset.fileId = item.info.id;
    let icon = fileIcon(item.info?.type ?? item.type, item.name);
    if (item.info?.thumb) {
      // An uploaded image shows a small preview of itself (decorative: its name follows).
      icon = el("img", "upload-thumb");
      icon.src = item.info.thumb;
      icon.alt = "";
      icon.height = 24;
      icon.width = Math.max(1, Math.round((24 * item.info.width) / item.info.height));
    }
    const name = el("span", "upload-name", item.name);
    name.title = item.name;
    chip.append(icon, name, el("span", "upload-size", formatSize(item.size)));
    item.progress = null;
    if (item.state === "uploading") {
      item.progress = el("progress", "upload-progress");
      item.progress.max = 1;
      item.progress.value = 0;
      item.progress.setAttribute("aria-label", interpolate(gettext("Uploading %(name)s"), { name: item.name }));
      chip.append(item.progress);
    } else if (item.state === "done") {
      chip.append(el("span", "upload-done", gettext("Ready")));
    }
    const label = item.state === "uploading" ? gettext("Cancel the upload of %(name)s") : gettext("Remove %(name)s");
    chip.append(button("upload-remove", "×", () => this.remove(item), interpolate(label, { name: item.name })));
    if (item.state === "failed") {
      const error = el("span", "upload-error", item.error);
      error.setAttribute("role", "alert");
      chip.append(error);
    }
    const hadFocus = item.chip?.contains(document.activeElement);
    if (item.chip) item.chip.replaceWith(chip);
    else this.list.append(chip);
    item.chip = chip;
    if (hadFocus) chip.querySelector(".upload-remove").focus();
  }

  changed() {
    this.list.hidden = this.items.length === 0;
    this.onChange();
  }
}

/** True when a drag event carries files (not text or a link). */
function carriesFiles(event) {
  return [...(event.dataTransfer?.types ?? [])].includes("Files");
}

let guarded = false;

/** A file dropped beside a pane would make the browser open it and leave the chat: refuse it. */
function guardPage() {
  if (guarded) return;
  guarded = true;
  for (const kind of ["dragover", "drop"]) {
    document.addEventListener(kind, (event) => {
      if (!carriesFiles(event) || event.defaultPrevented) return;
      event.preventDefault();
      if (kind === "dragover") event.dataTransfer.dropEffect = "none";
    });
  }
}

/**
 * Let files be dropped anywhere on `pane` (a drop zone shows while a file is dragged over it) and
 * images be pasted into `box`; both go to `uploads`. Returns nothing: the listeners live with the pane.
 */
export function acceptFiles(pane, box, uploads, isEnabled) {
  guardPage();
  const zone = el("div", "drop-zone");
  zone.append(el("span", "drop-zone-text", gettext("Drop files here to attach them")));
  zone.hidden = true;
  pane.append(zone);
  let depth = 0; // dragenter/dragleave pairs of the pane's children
  const hide = () => {
    depth = 0;
    zone.hidden = true;
    pane.classList.remove("dropping");
  };
  pane.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event) || !isEnabled()) return;
    event.preventDefault();
    depth++;
    zone.hidden = false;
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !isEnabled()) return;
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "copy";
  });
  pane.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) hide();
  });
  pane.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // the browser would open the file instead
    hide();
    if (isEnabled()) uploads.add([...event.dataTransfer.files]);
  });
  box.addEventListener("paste", (event) => {
    if (!isEnabled()) return;
    const files = [...(event.clipboardData?.items ?? [])]
      .filter((entry) => entry.kind === "file")
      .map((entry) => entry.getAsFile())
      .filter(Boolean);
    if (!files.length) return; // text: pasted as usual
    event.preventDefault();
    // A screenshot from the clipboard comes as "image.png": give it a name that says what and when.
    uploads.add(
      files.map((file) =>
        file.type.startsWith("image/") && (!file.name || file.name === "image.png")
          ? new File([file], pastedName(file.type), { type: file.type })
          : file,
      ),
    );
  });
}
