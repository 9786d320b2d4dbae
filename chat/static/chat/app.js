// Entry point: read the page's config, wire the room list, route socket frames to rooms.

import { CLOSE_UNAUTHENTICATED, Connection } from "./connection.js";
import { button, el, errorText } from "./render.js";
import { Room } from "./room.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const loginUrl = document.body.dataset.loginUrl || "/login/";
const socketPath = document.body.dataset.socketPath || "/chat/stream/";
const panes = document.getElementById("panes");
const hint = document.getElementById("panes-hint");
const notices = document.getElementById("notices");
const baseTitle = document.title;
const MAX_NOTICES = 4;

const roomInfo = new Map(config.rooms.map((r) => [r.id, r]));
const rooms = new Map(); // room id -> Room, for each open pane
const requests = new Map(); // ref -> {room, kind, ...}: what a reply or error belongs to
let nextRef = 1;

/** Send a command for `room`, tagged with a fresh ref; returns the ref, or null when offline. */
function command(room, obj, kind, extra = {}) {
  const ref = nextRef++;
  if (!conn.send({ ...obj, ref })) return null;
  requests.set(ref, { room, kind, ...extra });
  return ref;
}

const ctx = {
  command,
  me: config.user,
  isStaff: config.isStaff,
  maxLength: config.maxMessageLength,
  onUnread: showUnread,
  onLeave: closeRoom,
};

/** Open a pane for room `id` and join it. */
function openRoom(id) {
  const info = roomInfo.get(id);
  if (!info || rooms.has(id)) return;
  const room = new Room(info, ctx);
  rooms.set(id, room);
  panes.append(room.pane);
  room.join();
  room.focus();
  updateRoomList();
}

/** Leave room `id` and close its pane. */
function closeRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  rooms.delete(id);
  if (room.joined || room.joining) command(room, { command: "leave", room: id }, "leave");
  room.destroy();
  updateRoomList();
}

function updateRoomList() {
  for (const toggle of document.querySelectorAll(".room-toggle")) {
    const room = rooms.get(Number(toggle.dataset.roomId));
    toggle.setAttribute("aria-pressed", String(Boolean(room)));
    if (!room) showUnread({ id: Number(toggle.dataset.roomId), unread: 0 });
  }
  if (hint) hint.hidden = rooms.size > 0;
  panes.dataset.count = String(rooms.size);
}

/** Update a room's unread badge and the page title. */
function showUnread(room) {
  const badge = document.querySelector(`.room-toggle[data-room-id="${room.id}"] .unread`);
  if (badge) {
    badge.hidden = !room.unread;
    badge.dataset.count = String(room.unread);
    badge.textContent = String(room.unread);
    badge.title = `${room.unread} unread`;
  }
  let total = 0;
  for (const r of rooms.values()) total += r.unread;
  document.title = total ? `(${total}) ${baseTitle}` : baseTitle;
}

/** Show a notice that belongs to no pane in #notices. */
function notice(text, detail) {
  const item = el("div", "notice");
  item.setAttribute("role", "alert");
  const body = el("span", "notice-text", text);
  if (detail) body.append(" ", el("small", "notice-detail", detail));
  item.append(body);
  item.append(button("notice-close", "×", () => item.remove(), "Dismiss"));
  notices.append(item);
  while (notices.children.length > MAX_NOTICES) notices.firstElementChild.remove();
}

function onFrame(frame) {
  const req = frame.ref != null ? requests.get(frame.ref) : undefined;
  requests.delete(frame.ref);
  if (req && rooms.get(req.room.id) !== req.room) return; // for a pane closed since
  if ("error" in frame) return onError(frame, req);
  const id = "msg_type" in frame ? frame.room : (frame.join ?? frame.sent ?? frame.history ?? frame.deleted);
  const room = req?.room ?? rooms.get(id);
  if (!room || room.id !== id) return;
  if ("msg_type" in frame) room.onMessage(frame);
  else if ("join" in frame) room.onJoined(frame);
  else if ("history" in frame) room.onHistory(frame, req ?? { kind: "older" });
  else if ("sent" in frame) req && room.onSent(frame, req);
  else if ("deleted" in frame) room.onDeleted(frame.seq);
}

function onError(frame, req) {
  if (frame.error === "USER_HAS_TO_LOGIN") return notice(errorText(frame));
  // The handshake's refusal (database down): close 1013 follows and the connection state says so.
  if (frame.error === "SERVICE_UNAVAILABLE" && !req && frame.room == null) return;
  if (req?.kind === "leave") return;
  // Without a ref, `room` names a room the server took this socket out of.
  const room = req?.room ?? rooms.get(frame.room);
  if (room) room.onError(frame, req ?? { kind: "removed" });
  else notice(errorText(frame), frame.detail);
}

function onClose(code) {
  requests.clear();
  for (const room of rooms.values()) room.onDisconnect();
  if (code === CLOSE_UNAUTHENTICATED) {
    window.location.assign(`${loginUrl}?next=${encodeURIComponent(window.location.pathname)}`);
  }
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const conn = new Connection(
  `${scheme}//${window.location.host}${socketPath}`,
  document.getElementById("conn-state"),
  document.getElementById("conn-retry"),
  { onOpen: () => rooms.forEach((room) => room.join()), onFrame, onClose },
);

for (const button of document.querySelectorAll(".room-toggle")) {
  button.addEventListener("click", () => {
    const id = Number(button.dataset.roomId);
    if (rooms.has(id)) closeRoom(id);
    else openRoom(id);
  });
}
const checkRead = () => rooms.forEach((room) => room.checkRead());
window.addEventListener("focus", checkRead);
document.addEventListener("visibilitychange", checkRead);

updateRoomList();
conn.connect();
