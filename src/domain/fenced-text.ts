// Quoting text that someone other than the prompt's author wrote (an agent's output, a runner's, a
// message) in an LLM prompt: between fence lines its text cannot close, so that it stays material
// for the reader whatever it holds. Unfenced, it could end its block and go on as a section of the
// prompt's own (`## Messages from other agents`, `Your task: …`, a plan), posing as instructions
// from someone else. Used by the agents' prompts and the orchestrator's alike. Pure.

/** The fence line for `text`: backticks, one more than its longest run of them and at least three. */
export function fenceFor(text: string): string {
  let longest = 0;
  for (const match of text.matchAll(/`+/g)) longest = Math.max(longest, match[0].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** `text` between fence lines it cannot close (longer than any run of backticks in it). */
export function fenced(text: string): string {
  const fence = fenceFor(text);
  return `${fence}\n${text}\n${fence}`;
}

/**
 * Whether `text` holds a line break a model may read as one: \n and \r, and also vertical tab,
 * form feed, NEL and the Unicode line and paragraph separators.
 */
export function hasLineBreak(text: string): boolean {
  return /[\n\v\f\r\u0085\u2028\u2029]/.test(text);
}

/**
 * `text` as one list item after `lead` (`- from qa:`): a text of one line on the item's line, a
 * longer one fenced below it, where none of its lines can pose as another item or a section.
 */
export function quotedListItem(lead: string, text: string): string {
  return hasLineBreak(text) ? `${lead}\n${fenced(text)}` : `${lead} ${text}`;
}
