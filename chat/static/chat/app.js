// Entry point: read the page's config, wire the room list, route socket frames to rooms.

import { CLOSE_UNAUTHENTICATED, Connection } from "./connection.js";
import { Notifier } from "./notify.js";
import { Outbox } from "./outbox.js";
import { button, el, errorText } from "./render.js";
import { Room } from "./room.js";
import { Unread } from "./unread.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const loginUrl = document.body.dataset.loginUrl || "/login/";
const socketPath = document.body.dataset.socketPath || "/chat/stream/";
const panes = document.getElementById("panes");
const hint = document.getElementById("panes-hint");
const notices = document.getElementById("notices");
const baseTitle = document.title;
const MAX_NOTICES = 4;
const READ_DELAY = 1000; // ms: at most one read report per room a second (it costs history budget)
const IDLE_AFTER = 5 * 60 * 1000; // ms without input before the user shows as idle
// Commands whose errors need no pane: a refused read is tried again on the next check, typing is best effort.
const QUIET = new Set(["read", "typing"]);

const roomInfo = new Map(config.rooms.map((r) => [r.id, r]));
const rooms = new Map(); // room id -> Room, for each open pane
const requests = new Map(); // ref -> {room, kind, ...}: what a reply or error belongs to
const readTimers = new Map(); // room id -> pending read report
const unread = new Unread(config.rooms, baseTitle);
const notifier = new Notifier(document.getElementById("notify-enable"));
let nextRef = 1;
let idle = false;
let lastInput = Date.now();
let connectedOnce = false;

/** Send a command for `room`, tagged with a fresh ref; returns the ref, or null when offline. */
function command(room, obj, kind, extra = {}) {
  const ref = nextRef++;
  if (!conn.send({ ...obj, ref })) return null;
  requests.set(ref, { room, kind, ...extra });
  return ref;
}

const outbox = new Outbox(command); // the user's messages, in order, one at a time

const ctx = {
  command,
  outbox,
  me: config.user,
  isStaff: config.isStaff,
  maxLength: config.maxMessageLength,
  onLeave: closeRoom,
  readSeq: (id) => unread.readSeq(id),
  markRead,
  seen: (id, seq, mine) => unread.seen(id, seq, mine),
};

/** Report `seq` read in `room` after READ_DELAY, unless a read frame got there first. */
function markRead(room, seq) {
  if (readTimers.has(room.id)) return;
  readTimers.set(
    room.id,
    setTimeout(() => {
      readTimers.delete(room.id);
      const latest = Math.max(seq, room.maxSeq);
      const known = Math.max(unread.readSeq(room.id), room.readSent);
      if (rooms.get(room.id) === room && room.inView() && latest > known) {
        if (command(room, { command: "read", room: room.id, seq: latest }, "read") != null) room.readSent = latest;
      }
    }, READ_DELAY),
  );
}

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
  }
  if (hint) hint.hidden = rooms.size > 0;
  panes.dataset.count = String(rooms.size);
}

/** A mention frame: highlight the message, and notify unless the user is looking at that room. */
function onMention(frame) {
  const id = frame.mention;
  const room = rooms.get(id);
  room?.onMention(frame.seq);
  const looking = document.visibilityState === "visible" && document.hasFocus() && room?.visible;
  if (looking) return;
  const title = roomInfo.get(id)?.title ?? "a room";
  notifier.notify(`${frame.username} mentioned you in ${title}`, frame.message, `mention-${frame.id}`, () => {
    openRoom(id);
    rooms.get(id)?.focus();
  });
}

/** Input from the person (or the page shown again): active now, idle after IDLE_AFTER without. */
function onInput() {
  lastInput = Date.now();
  if (idle) setIdle(false);
}

function setIdle(value) {
  idle = value;
  conn.send({ command: "presence", state: idle ? "idle" : "active" });
}

/** After a reconnect, the counts may have moved while the socket was down: read them again. */
async function refreshCounts() {
  try {
    const reply = await fetch("/api/rooms", { credentials: "same-origin" });
    if (reply.ok) unread.reset((await reply.json()).rooms);
  } catch {
    // Offline again: the next reconnect tries once more.
  }
}

function onOpen() {
  if (connectedOnce) refreshCounts();
  connectedOnce = true;
  if (idle) setIdle(true); // a new socket starts active
  rooms.forEach((room) => room.join());
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
  if ("read" in frame) return unread.setRead(frame.read, frame.seq);
  if (QUIET.has(req?.kind)) {
    if (req.kind === "read") req.room.readSent = 0; // refused: the next check reports it again
    return;
  }
  if ("activity" in frame) return unread.activity(frame.activity);
  if ("mention" in frame) return onMention(frame);
  if ("presence" in frame) return rooms.get(frame.presence)?.onPresence(frame);
  if ("typing" in frame) return rooms.get(frame.typing)?.onTyping(frame);
  if (req && rooms.get(req.room.id) !== req.room) return; // for a pane closed since
  if ("error" in frame) return onError(frame, req);
  if ("join" in frame) {
    unread.seen(frame.join, frame.last_seq, false);
    unread.setRead(frame.join, frame.read_seq ?? 0);
  }
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
  outbox.disconnected();
  rooms.forEach((room) => (room.readSent = 0)); // unanswered reads are sent again
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
  { onOpen, onFrame, onClose },
  { heartbeat: config.heartbeatSeconds, heartbeatTimeout: config.heartbeatTimeoutSeconds },
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
for (const type of ["mousemove", "mousedown", "keydown", "touchstart", "wheel"]) {
  window.addEventListener(type, onInput, { passive: true });
}
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && onInput());
setInterval(() => !idle && Date.now() - lastInput >= IDLE_AFTER && setIdle(true), 30000);

updateRoomList();
conn.connect();
