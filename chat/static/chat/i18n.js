// Translation for the UI's modules: Django's JavaScript catalogue (/jsi18n/, loaded by base.html
// before any module) defines window.gettext and friends for the page's language. Call these by
// their gettext names (gettext, ngettext, pgettext) so that `manage.py makemessages -d djangojs`
// finds every string; never build a message from pieces or a template literal (write whole
// sentences with %(name)s placeholders and fill them with interpolate).

const catalogue = window.django ?? {};

/** The translation of `msgid` (itself when there is none). */
export const gettext = catalogue.gettext ?? ((msgid) => msgid);

/** The translation of `singular`/`plural` for `count`. */
export const ngettext = catalogue.ngettext ?? ((singular, plural, count) => (count === 1 ? singular : plural));

/** The translation of `msgid` where `context` tells apart two meanings of the same English word. */
export const pgettext = catalogue.pgettext ?? ((context, msgid) => msgid);

/** `fmt` with `%(name)s` filled from `values` (named) or `%s` from an array. */
export function interpolate(fmt, values) {
  if (Array.isArray(values)) {
    let i = 0;
    return fmt.replace(/%s/g, () => String(values[i++]));
  }
  return fmt.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}

/** The page's language (html lang), for Intl formatters that should follow the UI, not the OS. */
export const language = document.documentElement.lang || undefined;
