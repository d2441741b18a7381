/**
 * The cataloguers, in their order of priority: a file is read by the first
 * that wants it. RPM databases (RHEL, Fedora, SUSE) are not read yet.
 */
import { apk } from './apk.ts';
import type { Cataloguer } from './cataloguer.ts';
import { composer } from './composer.ts';
import { dotnet } from './dotnet.ts';
import { dpkg } from './dpkg.ts';
import { go } from './go.ts';
import { java } from './java.ts';
import { npm } from './npm.ts';
import { python } from './python.ts';
import { ruby } from './ruby.ts';

export type { Cataloguer } from './cataloguer.ts';

export const CATALOGUERS: readonly Cataloguer[] = [dpkg, apk, npm, python, java, go, ruby, composer, dotnet];

export function cataloguerFor(path: string, mode: number, size: number): Cataloguer | null {
  return CATALOGUERS.find((c) => c.wants(path, mode, size)) ?? null;
}
