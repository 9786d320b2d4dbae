// Desktop notifications for mentions (Notification API): permission is asked on a click, never on load.

const supported = () => "Notification" in window;

export class Notifier {
  /** Wire the top bar's "Enable notifications" button, shown while permission is undecided. */
  constructor(enableButton) {
    this.button = enableButton;
    this.button?.addEventListener("click", async () => {
      await Notification.requestPermission();
      this.update();
    });
    this.update();
  }

  /** True when a notification would show. */
  get allowed() {
    return supported() && Notification.permission === "granted";
  }

  /** Raise a notification (if allowed); `onClick` runs when the person clicks it. */
  notify(title, body, tag, onClick) {
    if (!this.allowed) return;
    const note = new Notification(title, { body, tag });
    note.addEventListener("click", () => {
      window.focus();
      note.close();
      onClick();
    });
  }

  update() {
    if (this.button) this.button.hidden = !supported() || Notification.permission !== "default";
  }
}
