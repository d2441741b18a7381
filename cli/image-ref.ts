/**
 * `stella scan image REF`: what REF names, and the image source for it.
 *
 *   ./layout, ./layout:1.4        an OCI image layout directory (the tag picks an index.json entry)
 *   image.tar, image.tar:1.4      an OCI archive (a tar of a layout)
 *   registry:5000/app/api:1.4     an image in a registry (tag, or @sha256:… digest)
 *   app/api:1.4                   the same in the site's registry (OUK_REGISTRY_URL)
 *
 * A path is taken when it exists on disk. The site's registry is reached with
 * its URL and account as the images stage reaches it; another registry by
 * https (http for a loopback host). Under STELLA_AIRGAP the guard lets only the
 * site's registry (and STELLA_AIRGAP_ALLOW) through.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { type ImageSource, ociArchiveSource, ociLayoutSource } from '../catalog/index.ts';
import { INDEX_TYPES, MANIFEST_TYPES } from '../bundle/oci.ts';
import { createRegistryClient, registryCredentials } from '../infra/registry.ts';
import type { Config } from '../lib/config.ts';
import { OukError } from '../lib/errors.ts';
import { isLoopback } from '../lib/loopback.ts';

const REPO = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface RegistryRef {
  /** host[:port], or null for the site's registry */
  host: string | null;
  repo: string;
  /** a tag or a digest */
  ref: string;
}

export function parseRegistryRef(text: string): RegistryRef {
  const bad = (why: string): OukError => new OukError('USAGE', `${JSON.stringify(text.slice(0, 300))} is not an image reference (${why}): give registry:5000/repo:tag, repo@sha256:…, or the path of an OCI layout or archive`);
  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest is not sha256:<64 hex>');
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  const host = first && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : null;
  if (host) rest = rest.slice(slash + 1);
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad('the tag has a character a tag may not have');
  }
  if (!REPO.test(rest) || rest.length > 255) throw bad('the repository name is not lower-case path components');
  if (host && !/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(host)) throw bad('the registry host is not host[:port]');
  return { host, repo: rest, ref: digest ?? tag ?? 'latest' };
}

function onDisk(text: string): { path: string; tag?: string; dir: boolean } | null {
  const stat = (p: string): fs.Stats | null => {
    try {
      return fs.statSync(p);
    } catch {
      return null;
    }
  };
  const whole = stat(text);
  if (whole) return { path: text, dir: whole.isDirectory() };
  const m = /^(.*):([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/.exec(text);
  const part = m ? stat(m[1]!) : null;
  return part && m ? { path: m[1]!, tag: m[2]!, dir: part.isDirectory() } : null;
}

/** The registry client's errors speak of the images stage's import; here they are about this scan. */
async function forScan<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (e instanceof OukError && (e.code === 'REGISTRY_REJECTED' || e.code === 'REGISTRY_UNAVAILABLE')) {
      const message = e.message.replace(/`stella ouk retry` the import/g, 'run the scan again').replace(/an account that may push/g, 'an account that may pull');
      throw new OukError(e.code, message, { cause: e, retryable: e.retryable });
    }
    throw e;
  }
}

function registrySource(config: Config, r: RegistryRef): ImageSource {
  const site = config.registryUrl ? new URL(config.registryUrl) : null;
  let url: string;
  let credentials;
  if (!r.host || (site && site.host === r.host)) {
    if (!site) throw new OukError('USAGE', `${r.repo}:${r.ref} names no registry and OUK_REGISTRY_URL is not set: give registry:port/${r.repo}, or set OUK_REGISTRY_URL`);
    url = site.origin;
    credentials = registryCredentials(config.registryAccount);
  } else {
    const hostname = r.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    url = `${isLoopback(hostname) ? 'http' : 'https'}://${r.host}`;
  }
  const client = createRegistryClient(url, credentials);
  const name = `${r.host ?? site!.host}/${r.repo}${r.ref.startsWith('sha256:') ? '@' : ':'}${r.ref}`;
  const accept = [...INDEX_TYPES, ...MANIFEST_TYPES];
  const missing = (what: string): OukError => new OukError('IMAGE_NOT_FOUND', `${name}: the registry ${client.url} has no ${what}: check the repository and tag (\`skopeo list-tags docker://${r.host ?? site!.host}/${r.repo}\`)`);
  return {
    name,
    async root(maxBytes) {
      const got = await forScan(client.getManifest(r.repo, r.ref, accept, maxBytes));
      if (!got) throw missing(`${r.repo}:${r.ref}`);
      return { ...got, digest: r.ref.startsWith('sha256:') ? r.ref : got.digest };
    },
    async document(digest, maxBytes) {
      const got = await forScan(client.getManifest(r.repo, digest, accept, maxBytes));
      if (!got) throw new OukError('IMAGE_INVALID', `${name}: the registry lacks manifest ${digest} its index names — re-push the image`);
      return { mediaType: got.mediaType, digest, body: got.body };
    },
    async openBlob(digest): Promise<Readable> {
      const got = await forScan(client.openBlob(r.repo, digest));
      if (!got) throw new OukError('IMAGE_INVALID', `${name}: the registry lacks blob ${digest} its manifest names — re-push the image`);
      return got;
    },
  };
}

/** The image source REF names (a path on disk first, else a registry reference). */
export function imageSource(config: Config, ref: string): ImageSource {
  const local = onDisk(ref);
  if (local) return local.dir ? ociLayoutSource(local.path, local.tag) : ociArchiveSource(local.path, local.tag);
  if (ref.startsWith('.') || ref.startsWith('/')) throw new OukError('IMAGE_NOT_FOUND', `${ref} does not exist: give the path of an OCI layout directory or archive`);
  return registrySource(config, parseRegistryRef(ref));
}
