/**
 * CPE 2.3 formatted strings as the bundle carries them (the `cpes` table keeps
 * NVD's escaping): the one parser both the builder (NVD configurations) and
 * the scanner (SBOM components' CPEs) use.
 */

/** Splits a CPE 2.3 formatted string on the colons that are not backslash-escaped. */
export function splitCpe(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i++;
    } else if (ch === ':') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}
