// A post's files under its text: images inline as their thumbnail (opening a lightbox), other
// files as cards with a download link. Everything from the frame goes through textContent and
// attributes; the URLs are the server's own (same origin, under the chat's prefix).

import { gettext, interpolate, language } from "./i18n.js";
import { button, el } from "./render.js";

const THUMB_WIDTH = 320; // px: the largest an inline image is drawn
const THUMB_HEIGHT = 240;
const UNITS = [gettext("%(size)s KB"), gettext("%(size)s MB"), gettext("%(size)s GB")];

/** A human size: "812 bytes", "1.4 MB" (units of 1024, in the page's number format). */
export function formatSize(bytes) {
  if (bytes < 1024) return interpolate(gettext("%(size)s bytes"), { size: bytes });
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const size = new Intl.NumberFormat(language, { maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
  return interpolate(UNITS[unit], { size });
}

// Short labels for common types; otherwise the name's extension says what a file is.
const TYPE_LABEL = { "application/pdf": "PDF", "text/plain": "TXT", "text/csv": "CSV", "application/zip": "ZIP" };

/**
 * A file's icon: a small tile with its kind ("PDF", "CSV", "IMG"), the same in every font (an
 * emoji would depend on the system's). Decorative: the name and type are said next to it.
 */
export function fileIcon(type = "", name = "") {
  const ext = /\.([A-Za-z0-9]{1,4})$/.exec(name)?.[1];
  let label = TYPE_LABEL[type] ?? (ext ? ext.toUpperCase() : "FILE");
  if (type.startsWith("image/") && !ext) label = "IMG";
  const icon = el("span", "file-icon", label);
  icon.dataset.kind = type.split("/")[0] || "other";
  icon.setAttribute("aria-hidden", "true");
  return icon;
}

/** The paperclip of "Attach files", drawn as SVG so it looks the same everywhere. */
export function paperclip() {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

/** `width` x `height` scaled down to fit the inline box, so the page reserves the right space. */
function fitted(width, height) {
  const scale = Math.min(1, THUMB_WIDTH / width, THUMB_HEIGHT / height);
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/** True when `info` is shown inline (the server made a thumbnail of it). */
function isImage(info) {
  return Boolean(info.thumb && info.width && info.height);
}

/** The files of a post, in upload order; null when it has none. */
function filesElement(files) {
  if (!files?.length) return null;
  const box = el("div", "files");
  const images = files.filter(isImage);
  const strip = el("div", "file-images");
  for (const info of images) {
    const open = el("button", "file-thumb");
    open.type = "button";
    open.setAttribute("aria-label", interpolate(gettext("Open image %(name)s"), { name: info.name }));
    const img = el("img");
    [img.width, img.height] = fitted(info.width, info.height);
    img.alt = info.name;
    img.loading = "lazy";
    img.decoding = "async";
    img.src = info.thumb;
    open.append(img);
    open.addEventListener("click", () => openLightbox(images, images.indexOf(info), open, box));
    strip.append(open);
  }
  if (images.length) box.append(strip);
  for (const info of files) if (!isImage(info)) box.append(fileCard(info));
  return box;
}

/** A card for a file shown by its name: icon, name, type, size and a download link. */
function fileCard(info) {
  const card = el("div", "file-card");
  card.dataset.type = info.type;
  const icon = fileIcon(info.type, info.name);
  const text = el("div", "file-text");
  const name = el("span", "file-name", info.name);
  name.title = info.name;
  text.append(name, el("span", "file-meta", `${info.type} · ${formatSize(info.size)}`));
  card.append(icon, text, downloadLink(info));
  return card;
}

/** "Download", a link to the file that saves it under its name. */
function downloadLink(info) {
  const link = el("a", "file-download", gettext("Download"));
  link.href = info.url;
  link.download = info.name;
  link.setAttribute("aria-label", interpolate(gettext("Download %(name)s"), { name: info.name }));
  return link;
}

/**
 * The lightbox: a modal <dialog> with image `index` of `images` at full size, its name, size and
 * a download link; ← and → move between the post's images, Escape or × close it, and the focus
 * goes back to the thumbnail of the image shown last.
 */
function openLightbox(images, index, opener, box) {
  const dialog = el("dialog", "lightbox");
  dialog.filesBox = box;
  const title = el("h2", "lightbox-name");
  title.id = "lightbox-name";
  dialog.setAttribute("aria-labelledby", title.id);
  const figure = el("figure", "lightbox-figure");
  const img = el("img", "lightbox-image");
  const caption = el("figcaption", "lightbox-caption");
  const size = el("span", "lightbox-size");
  const close = button("lightbox-close", "×", () => dialog.close(), gettext("Close"));
  const prev = button("lightbox-prev", "‹", () => show(index - 1), gettext("Previous image"));
  const next = button("lightbox-next", "›", () => show(index + 1), gettext("Next image"));
  const count = el("span", "lightbox-count");
  const link = el("span", "lightbox-link");
  caption.append(title, size, link, count);
  figure.append(img, caption);
  const head = el("div", "lightbox-head");
  if (images.length > 1) head.append(prev, next);
  head.append(close);
  dialog.append(head, figure);

  function show(i) {
    index = (i + images.length) % images.length;
    const info = images[index];
    img.alt = info.name;
    img.width = info.width;
    img.height = info.height;
    img.src = info.url;
    title.textContent = info.name;
    size.textContent = `${info.width} × ${info.height} · ${formatSize(info.size)}`;
    link.replaceChildren(downloadLink(info));
    count.textContent = images.length > 1 ? interpolate(gettext("Image %(n)s of %(count)s"), { n: index + 1, count: images.length }) : "";
  }
  dialog.addEventListener("keydown", (event) => {
    if (images.length < 2 || event.target.closest?.("a")) return;
    if (event.key === "ArrowLeft") show(index - 1);
    else if (event.key === "ArrowRight") show(index + 1);
    else return;
    event.preventDefault();
  });
  // A click on the backdrop (the dialog itself, outside its content) closes it, as in most viewers.
  dialog.addEventListener("click", (event) => event.target === dialog && dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    const thumbs = box.isConnected ? box.querySelectorAll(".file-thumb") : [];
    (thumbs[index] ?? (opener.isConnected ? opener : null))?.focus();
  });
  show(index);
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

/** Draw `frame.files` under message item `li` (from messageElement), unless it is a tombstone. */
export function addFiles(li, frame) {
  const files = frame.deleted ? null : filesElement(frame.files);
  if (!files) return;
  (li.querySelector(".show-more") ?? li.querySelector(".body")).after(files);
  li.classList.add("has-files");
  // A post of files alone has no text to show: its body stays empty, out of the way.
  if (!frame.message) li.querySelector(".body").hidden = true;
}

/** Post `li` was deleted: close the lightbox if it shows one of its images (markDeleted drops the files). */
export function closeLightboxOf(li) {
  const box = li.querySelector(".files");
  for (const dialog of document.querySelectorAll("dialog.lightbox")) if (box && dialog.filesBox === box) dialog.close();
}
