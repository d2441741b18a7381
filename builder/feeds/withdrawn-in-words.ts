/**
 * Withdrawn in words: the one rule that decides whether an OSV/GHSA record
 * withdrawn only in its text (no `withdrawn` field) is withdrawn. GitHub
 * withdraws a duplicate or invalid advisory by rewriting its title and
 * details, and leaves the `withdrawn` field out of many such records; the
 * CVE-derived OSV records of distributions carry a rejected CVE's text. Such
 * a record is withdrawn (feeds/osv.ts: at its `modified` time), so it never
 * adds a finding; a duplicate keeps nothing but its id.
 *
 * The wordings, each anchored where GitHub or the CVE program writes it so
 * that a record merely mentioning another advisory, a duplicate header or a
 * withdrawn release is not caught:
 *
 * - `title`: the summary starts `Withdrawn`, `Withdrawn Advisory` or
 *   `Duplicate Advisory`, followed by `:` or nothing (any case):
 *   "Duplicate Advisory: Keycloak DoS via account lockout",
 *   "Withdrawn: Arbitrary code execution in lodash", "WITHDRAWN: …";
 * - `heading`: a markdown heading or bold line of the details that is one
 *   of those words alone ("## Duplicate Advisory", "# Withdrawn",
 *   "**Withdrawn**", GHSA-8v27-2fg9-7h62's "# WITHDRAWN" below its original
 *   text), or a first line opening with one followed by `:` or `,`
 *   ("**Withdrawn:** Duplicate of GHSA-…", "Withdrawn, accidental duplicate
 *   publish.");
 * - `sentence`: the details say it of this advisory, at the start of a
 *   sentence: "This advisory has been withdrawn …" ("… because it is a
 *   duplicate of GHSA-…"), "This advisory was withdrawn", "This advisory is
 *   a duplicate of …", or anywhere "GitHub has withdrawn this advisory" /
 *   "we have withdrawn this advisory";
 * - `rejected-cve`: the details open as a rejected CVE does ("Rejected
 *   reason: DO NOT USE THIS CANDIDATE NUMBER …", "** REJECT ** …"), the text
 *   NVD marks with the status Rejected, which the NVD adapter already takes
 *   as withdrawn.
 *
 * test/withdrawn-in-words.test.ts checks every record of ../shared/feeds
 * against it: each one whose text mentions a withdrawal, a duplicate or a
 * rejection is either caught here or listed there as standing, with why.
 */

export type WithdrawalWording = 'title' | 'heading' | 'sentence' | 'rejected-cve';

/** The words that say withdrawn, as a title or a heading. */
const WORD = String.raw`(?:Withdrawn(?: Advisory)?|Duplicate Advisory)`;

const TITLE = new RegExp(String.raw`^${WORD}\s*(?::|$)`, 'i');

/** `**` or `__` and the blanks after it. */
const BOLD = String.raw`(?:\*\*|__)[ \t]*`;

/**
 * A heading line anywhere in the details: `## Duplicate Advisory`, `# WITHDRAWN`, `**Withdrawn**`, `### Withdrawn Advisory:`.
 * (Each part starts with a character the one before it cannot take, so a hostile line costs linear time.)
 */
const HEADING = new RegExp(String.raw`^[ \t]*(?:#{1,6}[ \t]*(?:${BOLD})?|${BOLD})${WORD}[ \t]*(?:[:*_#][ \t]*)*\r?$`, 'im');

/** The first line opening with the word: `**Withdrawn:** Duplicate of …`, `Withdrawn, accidental duplicate publish.`, `Withdrawn`. */
const OPENING = new RegExp(String.raw`^(?:#{1,6}[ \t]*)?(?:${BOLD})?${WORD}[ \t]*(?:${BOLD})?(?:[:,].*)?$`, 'i');

const SENTENCE = /(?:^|[.!?:][ \t]+|\n[ \t>*_-]*)This advisory (?:has been withdrawn|was withdrawn|is withdrawn|is a duplicate of)\b|\b(?:GitHub|we) ha(?:s|ve) withdrawn this advisory\b/i;

const REJECTED_CVE = /^(?:Rejected reason:|\*\*[ \t]*REJECT[ \t]*\*\*)/i;

/** Which wording says the record is withdrawn, or null when none does. */
export function withdrawalWording(summary: string | null | undefined, details: string | null | undefined): WithdrawalWording | null {
  if (summary && TITLE.test(summary.trim())) return 'title';
  const text = details?.trim() ?? '';
  if (text === '') return null;
  const firstLine = text.slice(0, text.search(/\r?\n|$/));
  if (OPENING.test(firstLine.trim()) || HEADING.test(text)) return 'heading';
  if (REJECTED_CVE.test(text)) return 'rejected-cve';
  if (SENTENCE.test(text)) return 'sentence';
  return null;
}
