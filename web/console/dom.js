// DOM helpers of the console: elements are built with properties and textContent only, so text
// from the API (objectives, agent output, error details) can never become markup.

/** Properties and attributes that parse their value as markup or run it: never set through h(). */
const MARKUP_NAMES = new Set(['innerhtml', 'outerhtml', 'srcdoc', 'style']);
/** Properties and attributes whose value is a URL the browser follows or loads. */
const URL_NAMES = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'data']);
/** The URLs the console builds: its own hash routes, same-origin paths and http(s) links. */
const SAFE_URL = /^(#|\/(?![/\\])|https?:)/i;

/**
 * Throws when `name` = `value` could turn data into markup, script or a `javascript:` link. Why
 * throw: every call site names its keys in code, so this fires only on a bug or on data that tries
 * to be a URL it must not be, and a broken view is better than a working injection.
 */
function checkSafe(name, value) {
  const lower = name.toLowerCase();
  if (MARKUP_NAMES.has(lower) || lower.startsWith('on')) {
    throw new TypeError(`h(): "${name}" is not set from the console's code (markup or script)`);
  }
  if (URL_NAMES.has(lower) && !SAFE_URL.test(String(value).trim())) {
    throw new TypeError(`h(): "${name}" must be a #route, a /path or an http(s) URL`);
  }
}

/**
 * Creates an element. `props` are set as properties (`className`, `type`, `disabled`, `htmlFor` …),
 * except `on` (event listeners), `attrs` (attributes such as aria-*) and `dataset`. Children are
 * nodes or strings (added as text), null/false skipped. Markup, inline handlers and URLs other than
 * `#…`, `/…` and `http(s):` are refused (checkSafe).
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node|string|number|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'on') {
      for (const [type, listener] of Object.entries(value)) element.addEventListener(type, listener);
    } else if (key === 'attrs') {
      for (const [name, attr] of Object.entries(value)) {
        if (attr === undefined || attr === null || attr === false) continue;
        checkSafe(name, attr);
        element.setAttribute(name, String(attr));
      }
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else {
      checkSafe(key, value);
      element[key] = value;
    }
  }
  append(element, ...children);
  return element;
}

/** Appends nodes or text to `parent`. */
export function append(parent, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces every child of `parent`. */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, ...children);
}

/** A labelled form field: `<label for=id>text</label>` followed by the control. */
export function field(labelText, control, hint) {
  const hintElement = hint ? h('small', { className: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id);
  return h(
    'div',
    { className: 'field' },
    h('label', { htmlFor: control.id }, labelText),
    control,
    hintElement,
  );
}

/**
 * Keeps the keyboard focus in a pager whose buttons were just enabled or disabled: when `before`
 * (the element focused before) is one of `buttons` and is disabled now (the last or first page
 * reached), the focus goes to the first of them still enabled. Why: a disabled button loses the
 * focus to the page's start, and Tab would start over from the skip link.
 * @param {Element | null} before @param {HTMLButtonElement[]} buttons
 */
export function keepPagerFocus(before, buttons) {
  if (!buttons.includes(before) || !before.disabled) return;
  buttons.find((button) => !button.disabled)?.focus();
}

/**
 * Disables `button` while what it started runs; returns the function that enables it again. Why:
 * disabling the focused button moves the focus to the start of the page, so enabling it gives the
 * focus back (unless it went elsewhere meanwhile: a field to fix, a secret shown).
 * @param {HTMLButtonElement} button
 * @returns {() => void}
 */
export function disableWhileRunning(button) {
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  return () => {
    button.disabled = false;
    const active = document.activeElement;
    if (hadFocus && button.isConnected && (active === null || active === document.body)) button.focus();
  };
}

/** Local date and time of an ISO timestamp, or an em dash. */
export function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** Dollars from $1 up (and nothing spent): cents, grouped as the browser's locale groups. */
const WHOLE_DOLLARS = new Intl.NumberFormat(undefined, {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
/**
 * Below $1, three significant digits (at least two): an LLM call costs fractions of a cent, which
 * cents would show as $0.00. Why not more: three tell amounts apart; the API gives the exact value.
 */
const CENTS_AND_LESS = new Intl.NumberFormat(undefined, {
  style: 'currency',
  currency: 'USD',
  minimumSignificantDigits: 2,
  maximumSignificantDigits: 3,
});

/**
 * An amount in US dollars as the whole console shows one: "$1,234.57", "$0.50", "$0.00878",
 * "$0.00", in the browser locale's way ("1.234,57 $" in German).
 */
export function formatUsd(value) {
  const amount = Number(value ?? 0);
  // Why 0.995: from there three significant digits would round up to "$1.00" anyway.
  return (amount === 0 || Math.abs(amount) >= 0.995 ? WHOLE_DOLLARS : CENTS_AND_LESS).format(amount);
}

/**
 * "$0.0123 / $0.05": an amount spent against its limit, each as formatUsd writes it, unless both
 * would then read the same while they differ ($0.010 / $0.010 for 0.010004 against 0.01: a budget
 * crossed that seems only reached, or one not reached that seems so). Then both are written with
 * the fewest decimals that tell them apart, as many for each: "$0.010004 / $0.010000". Rounding
 * never puts one past the other (it keeps their order), it only makes them read alike; and a
 * formatter writes one text for one rounded amount, so texts that differ stand for amounts that
 * differ, in the same order.
 */
export function formatSpendOf(used, limit) {
  const spent = Number(used ?? 0);
  const cap = Number(limit ?? 0);
  let shown = [formatUsd(spent), formatUsd(cap)];
  if (spent === cap || !Number.isFinite(spent) || !Number.isFinite(cap)) return shown.join(' / ');
  // Why up to 100: the most decimals Intl writes; any two amounts a budget names differ within them.
  for (let decimals = 3; shown[0] === shown[1] && decimals <= 100; decimals += 1) {
    const format = new Intl.NumberFormat(undefined, {
      style: 'currency',
      currency: 'USD',
      minimumFractionDigits: decimals,
      maximumFractionDigits: decimals,
    });
    shown = [format.format(spent), format.format(cap)];
  }
  return shown.join(' / ');
}

/** "1,234 tokens · $0.0123" from a usage object. */
export function formatUsage(usage) {
  if (!usage) return '—';
  const tokens = (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0);
  return `${countOf(tokens, 'token')} · ${formatUsd(usage.costUsd)}`;
}

/** "1 session", "2 sessions": `count` with the noun in the number it takes. */
export function countOf(count, one, many = `${one}s`) {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

/** Why a limit: a long objective would fill the tab strip and history with one title. */
const MAX_TITLE_CHARS = 60;

/** Splits text into what a reader sees as one character each (an emoji with its modifiers, a flag). */
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * `text` cut to at most `max` UTF-16 units, ending with "…" when cut. Why not a plain slice: a cut
 * inside a character outside the BMP (an emoji) shows as "�", and one inside a grapheme (a family
 * emoji joined by ZWJ, a flag, a letter and its accents) shows another character or a lone part.
 */
export function shorten(text, max) {
  if (text.length <= max) return text;
  let end = 0;
  // Only the start is segmented: an objective may be 20,000 characters long.
  for (const { index, segment } of graphemes.segment(text.slice(0, max + 32))) {
    if (index + segment.length > max - 1) break;
    end = index + segment.length;
  }
  return `${text.slice(0, end)}…`;
}

/**
 * `text` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, for user text placed inside a
 * sentence of the console or the tab's title: a right-to-left override (U+202E) or right-to-left
 * letters in it then stay inside it instead of reordering the console's own words around it.
 */
export function isolate(text) {
  return `\u2068${text}\u2069`;
}

/**
 * The tab's title for the page shown (`name · MAOS console`), so tabs and history tell pages apart.
 * `userText`: the name comes from a user (a session's objective), so it is isolated.
 */
export function setPageTitle(name, userText = false) {
  const short = shorten(name, MAX_TITLE_CHARS);
  if (!short) document.title = 'MAOS console';
  else document.title = `${userText ? isolate(short) : short} · MAOS console`;
}
