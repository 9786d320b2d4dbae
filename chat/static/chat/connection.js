// The one WebSocket for all rooms: JSON frames, the one connection state shown, reconnect with
// jittered backoff, and a heartbeat that notices a connection that went silent (sleep, Wi-Fi).

import { gettext, interpolate } from "./i18n.js";

const BASE_DELAY = 500; // ms: the first retry comes within this (full jitter)
const MAX_DELAY = 5000; // ms: the window stops growing here, so a restarted server is found fast
const STABLE_AFTER = 5000; // ms a socket must stay open before the backoff starts over
const UNAVAILABLE_MIN_DELAY = 2000; // ms: a server whose database is down is not retried at once
// ms: after close 1012 (a process restarting), the reconnect comes at a uniformly random moment of
// the window the close reason names ("within 20 s"; this one if none): every socket of the process
// got the close at the same instant, and they must not all come back at once (another process is
// serving already, so there is no pause first).
const RESTART_WINDOW = 5000;
const HEARTBEAT = 25; // s of silence from the server before a ping (the page's config may say otherwise)
const HEARTBEAT_TIMEOUT = 20; // s a ping or a handshake may go unanswered (more than the server's database bounds)
export const CLOSE_ABNORMAL = 1006; // what a dropped socket reports: no close frame came
export const CLOSE_SERVICE_RESTART = 1012; // the server process restarts: reconnect, spread over a window
export const CLOSE_TRY_AGAIN_LATER = 1013; // the database does not answer: retry after a pause
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_TOO_SLOW = 4408; // this socket fell behind: reconnect at once, re-join with since

/** The wait before retry number `attempt` (0 first): full jitter over a window doubling up to MAX_DELAY. */
export function backoffDelay(attempt, random = Math.random) {
  return random() * Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
}

/** The wait before reconnecting after close 1012: full jitter over the window its reason names. */
export function restartDelay(reason = "", random = Math.random) {
  const named = /within (\d+(?:\.\d+)?) s\b/.exec(reason);
  return random() * (named ? 1000 * Number(named[1]) : RESTART_WINDOW);
}

export class Connection {
  /**
   * Prepare a connection to `url`; handlers: onOpen(), onFrame(obj), onClose(code);
   * `heartbeat` and `heartbeatTimeout` in seconds.
   */
  constructor(url, stateEl, retryButton, { onOpen, onFrame, onClose }, { heartbeat, heartbeatTimeout } = {}) {
    this.url = url;
    this.stateEl = stateEl;
    this.retryButton = retryButton;
    retryButton?.addEventListener("click", () => this.retryNow());
    this.handlers = { onOpen, onFrame, onClose };
    this.heartbeatMs = 1000 * (heartbeat || HEARTBEAT);
    this.timeoutMs = 1000 * (heartbeatTimeout || HEARTBEAT_TIMEOUT);
    this.ws = null;
    this.attempt = 0;
    this.timer = null; // the next retry
    this.ticker = null; // the countdown shown until then
    this.beat = null; // the next look at how long the server has been silent
    this.answer = null; // drops the socket unless a frame (or the open) comes first
    this.lastHeard = 0;
    // Back on the network, or the page shown again (a laptop waking up): retry, or check the socket.
    window.addEventListener("online", () => this.wake());
    window.addEventListener("offline", () => this.ws || this.waiting());
    document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && this.wake());
  }

  /** True while frames can be sent. */
  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Open the socket (first connect, or a retry). */
  connect() {
    this.clearTimers();
    const ws = new WebSocket(this.url);
    this.ws = ws;
    if (this.attempt) this.setState("reconnecting", gettext("Reconnecting…"));
    else this.setState("connecting", gettext("Connecting…"));
    this.answer = setTimeout(() => this.drop(ws), this.timeoutMs); // a handshake that hangs
    ws.onopen = () => {
      this.heard();
      this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_AFTER);
      this.setState("connected", gettext("Connected"));
      this.armBeat(ws);
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => {
      this.heard();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && !("pong" in frame)) this.handlers.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.closed(event.code, event.reason);
    };
  }

  /** Send one command object; returns false (sending nothing) when the socket is not open. */
  send(obj) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  /** Skip the remaining backoff delay and connect at once. */
  retryNow() {
    if (!this.ws) this.connect();
  }

  /** The network or the page came back: connect now, or make sure the open socket still answers. */
  wake() {
    if (!this.ws) this.retryNow();
    else if (this.isOpen) this.probe(this.ws);
  }

  /** The socket closed (or was dropped): tell the page, then reconnect as the code asks. */
  closed(code, reason = "") {
    this.ws = null;
    clearTimeout(this.stableTimer);
    this.clearTimers();
    this.handlers.onClose(code);
    if (code === CLOSE_TOO_SLOW) {
      // The server is fine; only this socket fell behind: resume now (rooms re-join with since).
      this.attempt = 0;
      this.connect();
    } else if (code === CLOSE_SERVICE_RESTART) {
      // A planned restart, not a failure: the backoff starts over, spread over the restart window.
      this.attempt = 0;
      this.waiting(false, restartDelay(reason));
    } else if (code !== CLOSE_UNAUTHENTICATED) {
      this.waiting(code === CLOSE_TRY_AGAIN_LATER);
    }
  }

  /** Give up on `ws` without waiting for TCP to notice (it may take many minutes): it went silent. */
  drop(ws) {
    if (this.ws !== ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close();
    this.closed(CLOSE_ABNORMAL);
  }

  /** A frame (or the open) came: the connection works; a pending ping is answered. */
  heard() {
    this.lastHeard = Date.now();
    if (this.answer !== null) {
      clearTimeout(this.answer);
      this.answer = null;
    }
  }

  /** Look again when the server will have been silent for the heartbeat interval. */
  armBeat(ws) {
    clearTimeout(this.beat);
    const wait = Math.max(0, this.lastHeard + this.heartbeatMs - Date.now());
    this.beat = setTimeout(() => {
      if (this.ws !== ws) return;
      if (Date.now() - this.lastHeard >= this.heartbeatMs) {
        this.probe(ws);
        this.lastHeard = Date.now(); // the next ping one interval after this one, if still silent
      }
      this.armBeat(ws);
    }, wait);
  }

  /** Send a ping; no frame within the timeout drops the socket (and reconnects). */
  probe(ws) {
    if (this.answer !== null || !this.send({ command: "ping" })) return;
    this.answer = setTimeout(() => this.drop(ws), this.timeoutMs);
  }

  /** Schedule the next attempt: full jitter over an exponentially growing window.
   *  `unavailable`: the server said its database is down (1013): wait at least a pause, and say so.
   *  `jitter`: the wait already drawn (a restart's), instead of the backoff's. */
  waiting(unavailable = false, jitter = backoffDelay(this.attempt)) {
    this.clearTimers();
    if (!navigator.onLine) {
      this.setState("offline", gettext("Offline — waiting for the network…"));
      return;
    }
    const delay = unavailable ? UNAVAILABLE_MIN_DELAY + jitter : jitter;
    this.attempt++;
    const due = Date.now() + delay;
    const show = () => {
      const seconds = Math.ceil((due - Date.now()) / 1000);
      if (unavailable) {
        const text =
          seconds > 0
            ? interpolate(gettext("Server unavailable, retrying in %(seconds)s s…"), { seconds })
            : gettext("Server unavailable, retrying now…");
        this.setState("unavailable", text);
      } else {
        const text =
          seconds > 0 ? interpolate(gettext("Reconnecting in %(seconds)s s…"), { seconds }) : gettext("Reconnecting…");
        this.setState("reconnecting", text);
      }
    };
    show();
    this.ticker = setInterval(show, 1000);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    clearTimeout(this.beat);
    clearTimeout(this.answer);
    this.answer = null;
  }

  setState(state, text) {
    this.state = state;
    this.stateEl.dataset.state = state;
    if (this.stateEl.textContent !== text) this.stateEl.textContent = text;
    if (this.retryButton) this.retryButton.hidden = this.ws !== null;
  }
}
