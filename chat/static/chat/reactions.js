// A post's reactions row: one chip per emoji with its count; pressed when the user reacted.
// Clicking a chip toggles the user's own reaction (the server's change frame redraws the row).

import { gettext, interpolate } from "./i18n.js";
import { button, el } from "./render.js";

/** Who reacted, as one sentence: "ann, bob reacted with 👍". */
function reactedLabel(users, emoji) {
  return interpolate(gettext("%(names)s reacted with %(emoji)s"), { names: users.join(", "), emoji });
}

/**
 * Draw `reactions` ([{emoji, users}]) under post item `li`, replacing the row it had (none when
 * the list is empty). `onToggle(emoji, on)` puts the user's reaction on or takes it off.
 */
export function renderReactions(li, reactions, me, onToggle) {
  const old = li.querySelector(".reactions");
  const focused = old?.contains(document.activeElement) ? document.activeElement.dataset.emoji : null;
  old?.remove();
  li.reactions = reactions || [];
  if (!li.reactions.length || li.dataset.deleted === "true") return;
  const row = el("div", "reactions");
  row.setAttribute("role", "group");
  row.setAttribute("aria-label", gettext("Reactions"));
  for (const { emoji, users } of li.reactions) {
    const mine = users.includes(me);
    const label = reactedLabel(users, emoji);
    const chip = button("reaction", null, () => onToggle(emoji, !mine), label);
    chip.append(el("span", "reaction-emoji", emoji), el("span", "reaction-count", String(users.length)));
    chip.dataset.emoji = emoji;
    chip.title = label;
    chip.setAttribute("aria-pressed", String(mine));
    row.append(chip);
  }
  const anchor = li.querySelector(".show-more") ?? li.querySelector(".body");
  anchor.after(row);
  // Keyboard users keep their place: the chip they pressed, redrawn, has the focus again.
  if (focused) (row.querySelector(`[data-emoji="${CSS.escape(focused)}"]`) ?? row.querySelector("button")).focus();
}

/** True when the user has put `emoji` on post item `li`. */
export function reacted(li, emoji, me) {
  return (li.reactions || []).some((r) => r.emoji === emoji && r.users.includes(me));
}
