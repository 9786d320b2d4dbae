// A pane's scrolling message list: ordered inserts, grouping, and keeping the reader's place.

import { dayKey, daySeparator } from "./dates.js";
import { gettext, interpolate } from "./i18n.js";
import { button, el } from "./render.js";

const BOTTOM_SLACK = 32; // px from the bottom that still count as "at the bottom"
const TOP_SLACK = 80; // px from the top that trigger loading older messages
const GROUP_WINDOW = 5 * 60 * 1000; // ms within which one author's messages are grouped

export class Timeline {
  /**
   * Build the list; `onTop()` fires when the reader reaches the top, `onBottom()` at the bottom,
   * `onScroll()` on every scroll.
   */
  constructor(title, { onTop, onBottom, onScroll }) {
    this.element = el("div", "pane-body");
    this.list = el("ol", "messages");
    // Not role="log": every history page would be read out; new messages go to #announcer instead.
    this.list.tabIndex = 0;
    this.setTitle(title);
    this.top = el("li", "history-status");
    this.list.append(this.top);
    this.newButton = button("new-messages", gettext("New messages ↓"), () => this.scrollToBottom());
    this.newButton.hidden = true;
    this.element.append(this.list, this.newButton);
    this.stuck = true; // the reader follows the newest message
    // A pane resized (more panes, a narrower window) keeps following the newest message.
    new ResizeObserver(() => this.stuck && this.scrollToBottom()).observe(this.list);
    this.list.addEventListener(
      "scroll",
      () => {
        this.stuck = this.atBottom();
        if (this.stuck) {
          this.newButton.hidden = true;
          onBottom();
        }
        if (this.list.scrollTop < TOP_SLACK) onTop();
        onScroll();
      },
      { passive: true },
    );
  }

  /** Name the list for screen readers. */
  setTitle(title) {
    this.list.setAttribute("aria-label", interpolate(gettext("Messages in %(room)s"), { room: title }));
  }

  /** Run `change` on the list, then keep the reader's place: at the bottom, or the same item in view. */
  mutate(change, toBottom = false) {
    const list = this.list;
    const stick = toBottom || this.atBottom();
    let anchor = null;
    if (!stick) {
      for (const child of list.children) {
        if (child === this.top || child.classList.contains("day-separator")) continue; // redate may replace those
        if (child.offsetTop + child.offsetHeight > list.scrollTop) {
          anchor = child;
          break;
        }
      }
    }
    const before = anchor?.offsetTop;
    change();
    this.redate();
    this.regroup();
    if (stick) list.scrollTop = list.scrollHeight;
    else if (anchor?.isConnected) list.scrollTop += anchor.offsetTop - before;
    this.stuck = stick;
  }

  /** Insert an item by its sort key (seq; x.5 for notices; Infinity for pending); call inside mutate. */
  insert(node, key) {
    node.sortKey = key;
    let after = this.list.lastElementChild;
    while (after !== this.top && !(after.sortKey <= key)) after = after.previousElementSibling;
    after.after(node);
  }

  /** Put a day separator before the first message of each local day (and nowhere else). */
  redate() {
    const keep = new Set();
    let day = null;
    for (const node of this.list.querySelectorAll(":scope > .message")) {
      const key = dayKey(node.ts);
      if (key === day) continue;
      day = key;
      let separator = node.previousElementSibling;
      if (!separator?.classList.contains("day-separator") || separator.dataset.day !== key) {
        separator = daySeparator(node.ts);
        node.before(separator);
      }
      keep.add(separator);
    }
    for (const node of this.list.querySelectorAll(":scope > .day-separator")) {
      if (!keep.has(node)) node.remove();
    }
  }

  /** Mark each message that continues the previous one (same author and type, within minutes). */
  regroup() {
    let prev = null;
    for (const node of this.list.children) {
      const type = Number(node.dataset.type);
      const grouped =
        prev !== null &&
        type <= 3 &&
        prev.dataset.type === node.dataset.type &&
        prev.dataset.user === node.dataset.user &&
        node.ts - prev.ts < GROUP_WINDOW;
      node.classList.toggle("grouped", grouped);
      prev = node.classList.contains("message") && type <= 3 ? node : null;
    }
  }

  /** Set the line above the oldest message: state "loading", "more" (with a button) or "start". */
  setTop(state, content) {
    // Not a tab stop: Shift+Tab from the composer would land on it and drag the history to the
    // top. Keyboard users scroll the focused list instead, and reaching the top loads older pages.
    if (content instanceof HTMLElement && content.matches("button")) content.tabIndex = -1;
    this.mutate(() => {
      this.top.dataset.state = state;
      this.top.replaceChildren(content);
    });
  }

  /** True when the newest message is scrolled into view. */
  atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= BOTTOM_SLACK;
  }

  /** True when the list is too short to scroll, so reaching the top can't be signalled. */
  underfilled() {
    return this.list.scrollHeight <= this.list.clientHeight + TOP_SLACK;
  }

  /** Offer the "new messages" button unless the reader already sees the bottom. */
  announceNew() {
    if (!this.atBottom()) this.newButton.hidden = false;
  }

  /** Jump to the newest message. */
  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.newButton.hidden = true;
  }
}
