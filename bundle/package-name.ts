/**
 * The lookup key of a package name within its ecosystem, written by the builder
 * into `affected.package` and computed the same way by the scanner from a purl.
 * Follows each ecosystem's own equivalence rules.
 */

/** The ecosystem family: "Debian:12" -> "Debian", "Alpine:v3.18" -> "Alpine". */
export function ecosystemFamily(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i === -1 ? ecosystem : ecosystem.slice(0, i);
}

export function packageKey(ecosystem: string, name: string): string {
  switch (ecosystemFamily(ecosystem)) {
    case 'PyPI':
      // PEP 503 normalisation
      return name.toLowerCase().replace(/[-_.]+/g, '-');
    case 'NuGet':
    case 'Packagist':
    case 'crates.io':
    case 'Hex':
    case 'Pub':
      return name.toLowerCase();
    default:
      return name;
  }
}
