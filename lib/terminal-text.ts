/**
 * Strings from outside (object keys, kit versions, SBOM and package names,
 * error messages, a token's subject) on their way to a terminal: every
 * character a terminal would act on instead of show is written out as a
 * visible escape, so a key holding `\e]0;…\a\e[2J` cannot set the window
 * title or clear the screen, and a key holding a newline cannot forge a line
 * of a table.
 *
 *   terminalText('a\nb\u001b[2J')   // 'a\\nb\\x1b[2J' (printed: a\nb\x1b[2J)
 *
 * Escaped: C0 controls (U+0000-U+001F: `\n`, `\r`, `\t` by name, the others
 * as `\xNN`), DEL (`\x7f`), C1 controls (U+0080-U+009F: `\u009b`, which some
 * terminals take as CSI), the Unicode line and paragraph separators, and the
 * bidirectional embeddings, overrides and isolates (U+202A-U+202E,
 * U+2066-U+2069, U+061C, U+200E, U+200F), which reorder what follows them on
 * the line ("Trojan Source"). Everything else, including a backslash, is left
 * as it is: a string without those characters prints unchanged.
 *
 * Applied to every outside string a command prints, with or without NO_COLOR
 * and a TTY; JSON output needs nothing more (JSON.stringify escapes C0
 * controls, and the other characters are inert inside a quoted string read by
 * a program). The CLI's own newlines and colours are not passed through it.
 */

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u061c\u200e\u200f]/g;

const UNSAFE_ONE = new RegExp(UNSAFE.source);

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` (or String(s)) with every terminal control character written out as a visible escape. */
export function terminalText(s: unknown): string {
  const text = typeof s === 'string' ? s : String(s);
  return text.replace(UNSAFE, escapeOne);
}

/** Whether `s` holds a character terminalText would escape. */
export function hasTerminalControl(s: string): boolean {
  return UNSAFE_ONE.test(s);
}

/**
 * At most `max` characters of an outside string, escaped, for an error
 * message: a 5,000-character name is echoed as its first characters and its
 * length, never whole.
 */
export function excerpt(s: string, max = 64): string {
  const chars = Array.from(s);
  if (chars.length <= max) return terminalText(s);
  return `${terminalText(chars.slice(0, max).join(''))}… (${chars.length} characters)`;
}

/** Logical lines of a command's output, each escaped (an outside newline stays inside its line), joined and ended with `\n`. */
export function terminalLines(lines: readonly string[]): string {
  return lines.map((l) => terminalText(l)).join('\n') + '\n';
}
