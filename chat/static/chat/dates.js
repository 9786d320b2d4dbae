// Dates in the timeline: per-message times (relative while recent), day separators, one clock.
// Every date follows the browser's locale (Intl with an undefined locale), not the page's language.

import { gettext } from "./i18n.js";

const RECENT = 60 * 60 * 1000; // ms during which a message's time reads "5 minutes ago"
const TICK = 30 * 1000; // ms between two refreshes of every relative time and day label

// The browser's locale (undefined = its default), so dates read as the user expects.
const shortTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayThisYear = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayOtherYear = new Intl.DateTimeFormat(undefined, { dateStyle: "full" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "always", style: "long" });
const dayWords = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }); // "today", "yesterday"

/** The local calendar day of a timestamp (ms) as "YYYY-M-D": equal for two times on the same day. */
export function dayKey(ms) {
  const date = new Date(ms);
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/** `text` with its first letter upper case: Intl writes "today" for the middle of a sentence. */
function capitalized(text) {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}

/** "Today", "Yesterday" (in the browser's language), or the local date of the day that holds `ms`. */
export function dayLabel(ms, now = Date.now()) {
  const key = dayKey(ms);
  if (key === dayKey(now)) return capitalized(dayWords.format(0, "day"));
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (key === dayKey(yesterday.getTime())) return capitalized(dayWords.format(-1, "day"));
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return (sameYear ? dayThisYear : dayOtherYear).format(ms);
}

/** A separator line naming the local day of `ms`, for the place before that day's first message. */
export function daySeparator(ms) {
  const li = document.createElement("li");
  li.className = "day-separator";
  // A plain list item: role="separator" would take it out of the list (an <ol> holds only items).
  li.dataset.day = dayKey(ms);
  li.ts = ms;
  const label = document.createElement("span");
  label.className = "day-label";
  label.textContent = dayLabel(ms);
  li.append(label);
  return li;
}

/** What a message time reads at `now`: "just now", "5 minutes ago", or the short local time. */
function timeText(ms, now) {
  const age = now - ms;
  if (age < 60 * 1000) return gettext("just now"); // also a clock a little behind the server's
  if (age < RECENT) return relative.format(-Math.floor(age / 60000), "minute");
  return shortTime.format(ms);
}

/** A message's <time>: relative while recent, else its short time; the full date on hover. */
export function timeElement(ts) {
  const date = ts ? new Date(ts) : new Date();
  const ms = date.getTime();
  const node = document.createElement("time");
  node.className = "msg-time";
  node.dateTime = date.toISOString();
  node.title = fullDate.format(ms);
  node.ts = ms;
  node.textContent = timeText(ms, Date.now());
  if (Date.now() - ms < RECENT) node.dataset.relative = "";
  return node;
}

/** Bring every relative time and day label on the page up to date (the clock's one tick). */
export function refreshDates() {
  const now = Date.now();
  for (const node of document.querySelectorAll("time.msg-time[data-relative]")) {
    node.textContent = timeText(node.ts, now);
    if (now - node.ts >= RECENT) delete node.dataset.relative; // a clock time from now on
  }
  for (const node of document.querySelectorAll(".day-separator")) {
    const text = dayLabel(node.ts, now);
    const label = node.firstElementChild;
    if (label.textContent !== text) label.textContent = text; // "Today" becomes "Yesterday" at midnight
  }
}

// One timer for the whole page, not one per message.
setInterval(refreshDates, TICK);
