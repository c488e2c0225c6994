// The console's section navigation (Sessions, Usage, Audit, API keys, Webhooks): shown once signed
// in, marks the current section with aria-current, and drops a section the caller's roles do not
// grant (GET /v1/me) or the API refused (403) for this sign-in.

/** The navigation element of index.html (null in a page without it). */
function navElement() {
  return document.getElementById('nav');
}

/** Shows or hides the navigation; a new sign-in offers every section again. */
export function showNav(visible) {
  const nav = navElement();
  if (!nav) return;
  nav.hidden = !visible;
  for (const link of nav.querySelectorAll('a[data-nav]')) link.hidden = false;
}

/** The section a location hash belongs to: "sessions" for the list and one session. */
export function sectionOf(hash) {
  const name = /^#\/([a-z]+)/.exec(hash)?.[1];
  return name && ['usage', 'audit', 'keys', 'webhooks'].includes(name) ? name : 'sessions';
}

/** Marks the link of `hash`'s section as the current page. */
export function markCurrentSection(hash) {
  const nav = navElement();
  if (!nav) return;
  const current = sectionOf(hash);
  for (const link of nav.querySelectorAll('a[data-nav]')) {
    if (link.dataset.nav === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/**
 * Hides a section's link after the API answered 403 for it: the role of this sign-in lacks the
 * permission, so offering it again would only show the same refusal.
 */
export function hideSection(name) {
  const link = navElement()?.querySelector(`a[data-nav="${name}"]`);
  if (link) link.hidden = true;
}
