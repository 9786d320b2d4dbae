// The one WebSocket for all rooms: JSON frames, state display, reconnect with backoff.

const BASE_DELAY = 500; // ms before the first retry (upper bound; jittered)
const MAX_DELAY = 30000; // cap of the exponential backoff
const STABLE_AFTER = 5000; // ms a socket must stay open before the backoff starts over
const UNAVAILABLE_MIN_DELAY = 2000; // ms: a server whose database is down is not retried at once
export const CLOSE_TRY_AGAIN_LATER = 1013; // the database does not answer: retry after a pause
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_TOO_SLOW = 4408; // this socket fell behind: reconnect at once, re-join with since

export class Connection {
  /** Prepare a connection to `url`; handlers: onOpen(), onFrame(obj), onClose(code). */
  constructor(url, stateEl, retryButton, { onOpen, onFrame, onClose }) {
    this.url = url;
    this.stateEl = stateEl;
    this.retryButton = retryButton;
    retryButton?.addEventListener("click", () => this.retryNow());
    this.handlers = { onOpen, onFrame, onClose };
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.ticker = null;
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.ws || this.waiting());
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
    this.setState(this.attempt ? "reconnecting" : "connecting", this.attempt ? "Reconnecting…" : "Connecting…");
    ws.onopen = () => {
      this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_AFTER);
      this.setState("connected", "Connected");
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this.handlers.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.stableTimer);
      this.handlers.onClose(event.code);
      if (event.code === CLOSE_TOO_SLOW) {
        // The server is fine; only this socket fell behind: resume now (rooms re-join with since).
        this.attempt = 0;
        this.connect();
      } else if (event.code !== CLOSE_UNAUTHENTICATED) {
        this.waiting(event.code === CLOSE_TRY_AGAIN_LATER);
      }
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

  /** Schedule the next attempt: full jitter over an exponentially growing window.
   *  `unavailable`: the server said its database is down (1013): wait at least a pause, and say so. */
  waiting(unavailable = false) {
    this.clearTimers();
    if (!navigator.onLine) {
      this.setState("offline", "Offline — waiting for the network…");
      return;
    }
    const cap = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    const delay = unavailable ? UNAVAILABLE_MIN_DELAY + Math.random() * cap : Math.random() * cap;
    this.attempt++;
    const due = Date.now() + delay;
    const show = () => {
      const seconds = Math.ceil((due - Date.now()) / 1000);
      if (unavailable) {
        const when = seconds > 0 ? `in ${seconds} s` : "now";
        this.setState("unavailable", `Server unavailable, retrying ${when}…`);
      } else {
        this.setState("reconnecting", seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…");
      }
    };
    show();
    this.ticker = setInterval(show, 1000);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
  }

  setState(state, text) {
    this.state = state;
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = text;
    if (this.retryButton) this.retryButton.hidden = this.ws !== null;
  }
}
