// Entry point: read the page's config, wire the room list, route socket frames to rooms.

import { CLOSE_UNAUTHENTICATED, Connection } from "./connection.js";
import { gettext, interpolate } from "./i18n.js";
import { Layout } from "./layout.js";
import { Notifier } from "./notify.js";
import { Outbox } from "./outbox.js";
import { avatar, initPeople, nameOf, onRepaint, openCard, setMessageAction } from "./people.js";
import { button, el, errorText } from "./render.js";
import { Room } from "./room.js";
import { api, browseDialog, failureText, peopleDialog, titleDialog } from "./roomdialogs.js";
import { RoomList } from "./roomlist.js";
import { SearchBox } from "./search.js";
import { apiUrl } from "./paths.js";
import { Unread } from "./unread.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
// Where login and the socket are: the page says (a host site's base template may not carry
// the body's data attributes, so the config comes first).
const loginUrl = config.loginUrl || document.body.dataset.loginUrl || "/login/";
const socketPath = config.socketPath || document.body.dataset.socketPath || "/chat/stream/";
const notices = document.getElementById("notices");
const announcer = document.getElementById("announcer");
const baseTitle = document.title;
const MAX_NOTICES = 4;
const MAX_ANNOUNCED = 5; // the live region keeps only the newest few (it is read, not browsed)
const READ_DELAY = 1000; // ms: at most one read report per room a second (it costs history budget)
const IDLE_AFTER = 5 * 60 * 1000; // ms without input before the user shows as idle
// Commands whose errors need no pane: a refused read is tried again on the next check, typing is best effort.
const QUIET = new Set(["read", "typing"]);

initPeople(config.profile);
const meButton = document.getElementById("me-button");
meButton.before(avatar(config.user));
meButton.addEventListener("click", () => openCard(config.user, meButton));

const rooms = new Map(); // room id -> Room, for each open pane
const requests = new Map(); // ref -> {room, kind, ...}: what a reply or error belongs to
const readTimers = new Map(); // room id -> pending read report
let browsing = null; // the open "Browse rooms" dialog
let layout = null; // made below, once openRoom and closeRoom exist (layout.js)
const gone = new Set(); // rooms removed live: the server's own "taken out" error needs no second notice
const roomList = new RoomList(config.rooms, {
  me: config.user,
  isStaff: config.isStaff,
  list: document.getElementById("rooms"),
  empty: document.getElementById("no-rooms"),
  directList: document.getElementById("directs"),
  onChange: () => {
    browsing?.refresh();
    layout?.render(); // new list items get their pressed state and hover title
  },
});
const unread = new Unread(
  config.rooms.filter((r) => !r.left),
  baseTitle,
);
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
  uploadMaxBytes: config.uploadMaxBytes,
  uploadMaxFiles: config.uploadMaxFiles ?? 10,
  editWindow: config.editWindowSeconds,
  onLeave: closeRoom,
  readSeq: (id) => unread.readSeq(id),
  markRead,
  seen: (id, seq, mine) => unread.seen(id, seq, mine),
  canRename: (id) => roomList.canRename(id),
  onRename: renameRoom,
  onDepart: departRoom,
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

/** Open a pane for room `id`, put it in front and join it; `focus` moves the keyboard into it. */
function openRoom(id, { focus = true } = {}) {
  const info = roomList.get(id);
  if (!info || info.left || rooms.has(id)) return;
  const room = new Room(info, ctx);
  rooms.set(id, room);
  layout.added(room, { focus });
  room.join();
}

/** Leave room `id` and close its pane. */
function closeRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  rooms.delete(id);
  if (room.joined || room.joining) command(room, { command: "leave", room: id }, "leave");
  room.destroy();
  layout.removed(room);
}

layout = new Layout({ me: config.user, rooms, open: openRoom, close: closeRoom });

/**
 * Open room `id` (or bring its pane to the front) and jump to message `seq` in it, paging back
 * through its history as far as needed (search results; replies reuse it).
 */
function jumpTo(id, seq) {
  const info = roomList.get(id);
  if (!rooms.has(id)) {
    if (!info) return notice(gettext("That room is not in your list any more."));
    if (info.left) return notice(gettext("You left that room: join it again from “Browse rooms” to see the message."));
    openRoom(id, { focus: false });
  } else layout.show(id, { focus: false });
  rooms.get(id)?.jumpTo(seq);
}

/** Say a new message from someone else out loud (screen readers), once, through the live region. */
function announce(room, frame) {
  if (frame.username === config.user || frame.seq == null || frame.msg_type >= 4) return;
  let message = frame.message;
  if (frame.files?.length) {
    const names = frame.files.map((info) => info.name).join(", ");
    message = message
      ? interpolate(gettext("%(message)s (files: %(names)s)"), { message, names })
      : interpolate(gettext("files: %(names)s"), { names });
  }
  const values = { name: frame.username, room: room.title, message };
  // The room is named only when more than one is open.
  const text = rooms.size > 1 ? gettext("%(name)s in %(room)s: %(message)s") : gettext("%(name)s: %(message)s");
  announcer.append(el("p", null, interpolate(text, values)));
  while (announcer.children.length > MAX_ANNOUNCED) announcer.firstElementChild.remove();
}

/** Redraw the open rooms' state in the list, tabs and panes. */
function updateRoomList() {
  layout.render();
}

// --- the live room list (roomlist.js) and its dialogs (roomdialogs.js) ------------

/** A room was created or changed, or the user rejoined it: list it, retitle its pane. */
function onRoomListed(id, fields) {
  const change = roomList.upsert({
    id,
    title: fields.title,
    staffOnly: fields.staff_only,
    createdBy: fields.created_by,
    left: fields.left,
    kind: fields.kind,
    members: fields.members,
  });
  if (change === "added") {
    unread.add(id);
    refreshCounts(); // a room new to this page may have messages: read its counts
  }
  rooms.get(id)?.setTitle(roomList.get(id)?.title ?? fields.title);
  updateRoomList();
}

/** "New message" (or a profile card's "Message"): pick people, open the conversation with them. */
function newDirect(preset = []) {
  const known = preset.length ? roomList.findDirect(preset) : undefined;
  if (known && !known.left) {
    if (rooms.has(known.id)) layout.show(known.id);
    else openRoom(known.id);
    return;
  }
  const open = async (users) => {
    const result = await api("POST", apiUrl("direct"), { users });
    if (result.ok) {
      onRoomListed(result.body.id, { ...result.body, left: false });
      roomList.setLeft(result.body.id, false);
      if (rooms.has(result.body.id)) layout.show(result.body.id);
      else openRoom(result.body.id);
    }
    return result;
  };
  if (preset.length) {
    open(preset).then((result) => result.ok || notice(failureText(result)));
    return;
  }
  peopleDialog({
    me: config.user,
    maxMembers: config.directMaxMembers,
    nameOf,
    submit: open,
    done: () => {},
  });
}

// A display name arrived: conversations are named by their other members.
onRepaint(() => {
  for (const id of roomList.retitle()) rooms.get(id)?.setTitle(roomList.get(id).title);
});
setMessageAction((username) => newDirect([username]));

/** Room `id` left this user's list (`why`: "removed" or "left"): close its pane, say why. */
function onRoomGone(id, why) {
  const info = why === "removed" ? roomList.remove(id) : (roomList.setLeft(id, true), roomList.get(id));
  unread.remove(id);
  if (why === "removed") gone.add(id);
  if (rooms.has(id)) {
    const title = info?.title ?? rooms.get(id).title;
    closeRoom(id);
    const text =
      why === "removed"
        ? gettext("“%(room)s” was closed: it was deleted, or you may no longer enter it.")
        : gettext("You left “%(room)s”.");
    notice(interpolate(text, { room: title }));
  }
  updateRoomList();
}

function newRoom() {
  titleDialog({
    maxLength: config.roomTitleMaxLength,
    isStaff: config.isStaff,
    submit: (title, staffOnly) => api("POST", apiUrl("rooms"), staffOnly ? { title, staff_only: true } : { title }),
    done: (room) => {
      onRoomListed(room.id, room);
      openRoom(room.id);
    },
  });
}

function renameRoom(id) {
  const info = roomList.get(id);
  if (!info) return;
  titleDialog({
    info,
    maxLength: config.roomTitleMaxLength,
    submit: (title) => api("PATCH", apiUrl(`rooms/${id}`), { title }),
    done: (room) => onRoomListed(room.id, room),
  });
}

/** Leave room `id` for good (Slack's leave): out of the list on every device, until rejoined. */
async function departRoom(id) {
  const result = await api("POST", apiUrl(`rooms/${id}/leave`));
  if (result.ok) onRoomGone(id, "left");
  else if (rooms.has(id)) rooms.get(id).showError(failureText(result));
  else notice(failureText(result));
}

/** Join a room left before, from the browse list: back in the list, and open. */
async function rejoinRoom(id) {
  const result = await api("POST", apiUrl(`rooms/${id}/join`));
  if (result.ok) {
    onRoomListed(id, { ...result.body, left: false });
    roomList.setLeft(id, false);
    browsing?.close();
    openRoom(id);
  }
  return result;
}

function browseRooms() {
  browsing = browseDialog({
    rooms: () => roomList.all(),
    isOpen: (id) => rooms.has(id),
    open: openRoom,
    rejoin: rejoinRoom,
  });
  browsing.addEventListener("close", () => (browsing = null));
}

/** A mention frame: highlight the message, and notify unless the user is looking at that room. */
function onMention(frame) {
  const id = frame.mention;
  const room = rooms.get(id);
  room?.onMention(frame.seq);
  const looking = document.visibilityState === "visible" && document.hasFocus() && room?.visible;
  if (looking) return;
  if (!roomList.listed(id)) return; // a room the user left: no notification
  const info = roomList.get(id);
  const title = info?.title;
  const name = nameOf(frame.username);
  let heading;
  if (info?.kind === "direct") {
    // Every post in a conversation is for its members: it notifies like a mention.
    heading =
      info.members.length > 2
        ? interpolate(gettext("%(name)s wrote in %(room)s"), { name, room: title })
        : interpolate(gettext("%(name)s wrote to you"), { name });
  } else if (title) heading = interpolate(gettext("%(name)s mentioned you in %(room)s"), { name: frame.username, room: title });
  else heading = interpolate(gettext("%(name)s mentioned you in a room"), { name: frame.username });
  notifier.notify(heading, frame.message, `mention-${frame.id}`, () => {
    if (rooms.has(id)) layout.show(id);
    else openRoom(id);
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
    const reply = await fetch(apiUrl("rooms"), { credentials: "same-origin" });
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
  item.append(button("notice-close", "×", () => item.remove(), gettext("Dismiss")));
  notices.append(item);
  while (notices.children.length > MAX_NOTICES) notices.firstElementChild.remove();
}

function onFrame(frame) {
  const req = frame.ref != null ? requests.get(frame.ref) : undefined;
  requests.delete(frame.ref);
  if ("read" in frame) return unread.setRead(frame.read, frame.seq, frame.posts);
  if (QUIET.has(req?.kind)) {
    if (req.kind === "read") req.room.readSent = 0; // refused: the next check reports it again
    return;
  }
  if ("activity" in frame) return unread.activity(frame.activity);
  if ("room_listed" in frame) return onRoomListed(frame.room_listed, frame);
  if ("room_removed" in frame) return onRoomGone(frame.room_removed, "removed");
  if ("room_left" in frame) return onRoomGone(frame.room_left, "left");
  if ("room_rejoined" in frame) return onRoomListed(frame.room_rejoined, { ...frame, left: false });
  if ("mention" in frame) return onMention(frame);
  if ("presence" in frame) return rooms.get(frame.presence)?.onPresence(frame);
  if ("typing" in frame) return rooms.get(frame.typing)?.onTyping(frame);
  if (req && rooms.get(req.room.id) !== req.room) return; // for a pane closed since
  if ("error" in frame) return onError(frame, req);
  if ("change" in frame) {
    // An edit, deletion or reaction, numbered in the room's stream: applied, never shown or counted.
    unread.changed(frame.room, frame.seq);
    if (!req?.room || req.room.id === frame.room) rooms.get(frame.room)?.onChange?.(frame);
    return;
  }
  if ("join" in frame) {
    unread.known(frame.join, frame.last_seq, frame.posts);
    unread.setRead(frame.join, frame.read_seq ?? 0, frame.read_posts ?? 0);
  }
  const id = "msg_type" in frame ? frame.room : (frame.join ?? frame.sent ?? frame.history ?? frame.changed);
  const room = req?.room ?? rooms.get(id);
  if (!room || room.id !== id) return;
  if ("msg_type" in frame) {
    const live = room.joined && !room.replayLeft; // replayed after a reconnect: not news
    room.onMessage(frame);
    if (live) announce(room, frame);
  }
  else if ("join" in frame) room.onJoined(frame);
  else if ("history" in frame) room.onHistory(frame, req ?? { kind: "older" });
  else if ("sent" in frame) req && room.onSent(frame, req);
  else if ("changed" in frame) req && room.onChanged(frame, req);
}

function onError(frame, req) {
  if (frame.error === "USER_HAS_TO_LOGIN") return notice(errorText(frame));
  // The handshake's refusal (database down): close 1013 follows and the connection state says so.
  if (frame.error === "SERVICE_UNAVAILABLE" && !req && frame.room == null) return;
  if (req?.kind === "leave") return;
  // Without a ref, `room` names a room the server took this socket out of.
  if (!req && gone.has(frame.room)) return; // its pane closed with a notice already
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

// One listener for the list: its buttons come and go with the live room list.
document.getElementById("rooms").addEventListener("click", (event) => {
  const toggle = event.target.closest(".room-toggle");
  if (toggle) layout.toggled(Number(toggle.dataset.roomId));
});
document.getElementById("room-new")?.addEventListener("click", newRoom);
document.getElementById("room-browse").addEventListener("click", browseRooms);
document.getElementById("directs").addEventListener("click", (event) => {
  const toggle = event.target.closest(".room-toggle");
  if (toggle) layout.toggled(Number(toggle.dataset.roomId));
});
document.getElementById("direct-new").addEventListener("click", () => newDirect());
const checkRead = () => rooms.forEach((room) => room.checkRead());
window.addEventListener("focus", checkRead);
document.addEventListener("visibilitychange", checkRead);
for (const type of ["mousemove", "mousedown", "keydown", "touchstart", "wheel"]) {
  window.addEventListener(type, onInput, { passive: true });
}
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && onInput());
setInterval(() => !idle && Date.now() - lastInput >= IDLE_AFTER && setIdle(true), 30000);

new SearchBox({ open: jumpTo });

layout.restore();
conn.connect();
