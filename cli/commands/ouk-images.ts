/**
 * `stella ouk images [--json]`: the OCI images the active kit (and, for a
 * delta, the kits it applies on) carries — name, tag, index digest,
 * platforms, the import that pushed it — and whether the site's registry
 * (OUK_REGISTRY_URL) holds each one: the index by digest, and the tag
 * pointing at it. Exit 0 when every image is held (or no registry is
 * configured), REGISTRY_UNAVAILABLE / 58 when the registry does not answer,
 * REGISTRY_REJECTED / 59 when it lacks an image.
 */
import type { Command } from 'commander';
import { activeKitImages, type SiteImage } from '../../functions/images.ts';
import { INDEX_TYPES, platformLabel } from '../../bundle/oci.ts';
import { createPool, migrate } from '../../infra/db.ts';
import { resolveEnv } from '../../infra/env.ts';
import { createRegistryClient } from '../../infra/registry.ts';
import { loadConfig } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';

interface ImageLine extends SiteImage {
  repository: string;
  /** null: no registry configured */
  held: boolean | null;
  /** the digest the registry's tag points at */
  tagDigest: string | null;
}

export function registerOukImages(ouk: Command): void {
  ouk
    .command('images')
    .description("the OCI images the active kit carries and whether the site's registry (OUK_REGISTRY_URL) holds them")
    .option('--json', 'machine-readable output on stdout', false)
    .action(async (opts: { json: boolean }) => {
      const config = loadConfig(resolveEnv());
      const pool = createPool(config.databaseUrl, 2);
      try {
        await migrate(pool);
        const { version, images } = await activeKitImages(pool);
        const client = config.registryUrl ? createRegistryClient(config.registryUrl, config.registryCredentials) : null;
        const lines: ImageLine[] = [];
        for (const img of images) {
          const repository = `${config.registryPrefix}${img.name}`;
          const byDigest = client ? await client.manifestDigest(repository, img.indexDigest, INDEX_TYPES) : null;
          const tagDigest = client ? await client.manifestDigest(repository, img.tag, INDEX_TYPES) : null;
          lines.push({ ...img, repository, held: client ? byDigest === img.indexDigest && tagDigest === img.indexDigest : null, tagDigest });
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ activeVersion: version, registry: client?.url ?? null, images: lines }, null, 2)}\n`);
        } else if (!lines.length) {
          process.stdout.write(version ? `the active kit ${version} carries no images\n` : 'no active DB: import a kit first\n');
        } else {
          process.stdout.write(`images of the active kit ${version}${client ? `, registry ${client.url}` : ' (no registry configured: OUK_REGISTRY_URL)'}\n`);
          for (const l of lines) {
            const held = l.held === null ? 'not checked' : l.held ? 'held' : l.tagDigest ? `NOT held (tag points at ${l.tagDigest})` : 'NOT held';
            process.stdout.write(`  ${l.repository}:${l.tag}  ${l.indexDigest}  ${l.platforms.map(platformLabel).join(', ')}  from ${l.version}  push ${l.pushState ?? 'pending'}  ${held}\n`);
          }
        }
        const missing = lines.filter((l) => l.held === false);
        if (missing.length) {
          throw new OukError('REGISTRY_REJECTED', `the registry ${client!.url} does not hold ${missing.map((m) => `${m.repository}@${m.indexDigest}`).join(', ')}: \`stella ouk retry\` the import that carries it`);
        }
      } finally {
        await pool.end();
      }
    });
}
