/**
 * `--torrent`: a `.torrent` per kit (BitTorrent v1, single file, made by
 * create-torrent) whose web seed (BEP 19 `url-list`) is the kit's address on
 * the mirror (`OUK_MIRROR_PUBLIC_URL` + file name), so a client downloads
 * from the mirror over HTTP and from peers alike. No tracker is named: the
 * web seed alone is enough, and an intranet mirror should not announce to
 * public trackers; `trackers` adds some. The creation date is the kit's, so
 * the same kit gives the same file.
 */
import createTorrent from 'create-torrent';
import { OukError } from '../../lib/errors.ts';

export async function writeTorrentBytes(kitPath: string, opts: { file: string; publicUrl: string; created: Date; trackers?: string[] }): Promise<Uint8Array> {
  const url = new URL(encodeURIComponent(opts.file), opts.publicUrl).toString();
  return new Promise((resolve, reject) => {
    createTorrent(
      kitPath,
      {
        name: opts.file,
        creationDate: opts.created,
        createdBy: 'stella-ouk publish',
        announceList: (opts.trackers ?? []).map((t) => [t]),
        urlList: [url],
      },
      (err, torrent) => (err ? reject(err) : resolve(torrent)),
    );
  });
}

/** OUK_MIRROR_PUBLIC_URL: the http(s) directory the mirror is served at (a trailing `/` added). */
export function parsePublicUrl(raw: string | undefined): string {
  const text = (raw ?? '').trim();
  if (!text) {
    throw new OukError('USAGE', '--torrent needs the address the mirror is served at, for the web seed: give --public-url URL or set OUK_MIRROR_PUBLIC_URL (e.g. https://mirror.example.org/stella/)');
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new OukError('USAGE', `OUK_MIRROR_PUBLIC_URL=${text} is not a URL: give the directory the mirror is served at, e.g. https://mirror.example.org/stella/`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OukError('USAGE', `OUK_MIRROR_PUBLIC_URL=${text}: a web seed is http:// or https://`);
  if (u.search || u.hash) throw new OukError('USAGE', `OUK_MIRROR_PUBLIC_URL=${text}: give the directory without a query or fragment`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
}
