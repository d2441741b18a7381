/**
 * Where a kit comes from: a local file, or an http(s) URL on an intranet
 * mirror. With STELLA_AIRGAP=true a URL that is not a configured endpoint is
 * refused before any packet leaves (AIRGAP_VIOLATION, exit 56).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseManifest, type Manifest } from '../../bundle/manifest.ts';
import { findOukError, OukError } from '../../lib/errors.ts';
import { peekManifest } from '../../bundle/manifest-peek.ts';

export interface Source {
  /** What the operator named. */
  name: string;
  /** Object key in the bucket: the file name. */
  key: string;
  isUrl: boolean;
}

export function sourceOf(arg: string): Source {
  const isUrl = /^https?:\/\//i.test(arg);
  const base = isUrl ? decodeURIComponent(path.posix.basename(new URL(arg).pathname)) : path.basename(arg);
  if (!base.endsWith('.tar.gz')) {
    throw new OukError('USAGE', `${arg} is not a bundle tarball: only *.tar.gz kits are imported (the .sig and .sigstore.json beside it are uploaded with it)`);
  }
  return { name: arg, key: base, isUrl };
}

export async function fetchOk(url: string, init: RequestInit = {}): Promise<Response | null> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'follow' });
  } catch (e) {
    const refused = findOukError(e, 'AIRGAP_VIOLATION');
    if (refused) {
      throw new OukError(
        'AIRGAP_VIOLATION',
        `air-gap mode (STELLA_AIRGAP=true) does not fetch ${url}: ${refused.message.replace(/^air-gap mode \(STELLA_AIRGAP=true\) /, '')}. Copy the kit across the gap and import the file, or drop it into the bucket`,
        { cause: e },
      );
    }
    throw new OukError('INPUT_NOT_FOUND', `cannot reach ${url} (${(e as Error).message}): check the mirror address`, { cause: e });
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok && res.status !== 206) {
    await res.body?.cancel();
    throw new OukError('INPUT_NOT_FOUND', `${url} answered HTTP ${res.status}`);
  }
  return res;
}

export function webToNode(res: Response): Readable {
  return Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
}

/** The manifest from the start of the tarball (unverified: used for sizes only; verify checks everything). */
export async function readManifestOf(src: Source): Promise<Manifest | null> {
  try {
    if (!src.isUrl) return parseManifest(await peekManifest(fs.createReadStream(src.name)));
    const res = await fetchOk(src.name, { headers: { range: 'bytes=0-4194303' } });
    if (!res?.body) return null;
    return parseManifest(await peekManifest(webToNode(res)));
  } catch (e) {
    if (e instanceof OukError && e.code === 'INPUT_NOT_FOUND') throw e;
    return null;
  }
}

