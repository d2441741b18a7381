/**
 * `stella ouk images [--json]`: the OCI images the active kit (and, for a
 * delta, the kits it applies on) carries — name, tag, index digest,
 * platforms, the import that pushed it — and whether the site's registry
 * (OUK_REGISTRY_URL) holds each one: the index by digest, and the tag
 * pointing at it. Exit 0 when every image is held (or no registry is
 * configured), REGISTRY_UNAVAILABLE / 58 when the registry does not answer,
 * REGISTRY_REJECTED / 59 when it lacks an image. With --push it first
 * pushes what the registry lacks (functions/images.ts pushActiveImages); an
 * import whose images step it so repairs is recorded done and its failed job
 * removed from the queue, so `stella ouk jobs --failed` and
 * ouk_queue_jobs{queue="images",state="failed"} no longer show it.
 */
import type { Command } from 'commander';
import { activeKitImages, type ImagesPushed, pushActiveImages, type SiteImage } from '../../functions/images.ts';
import { INDEX_TYPES, platformLabel } from '../../bundle/oci.ts';
import type { Pool } from '../../infra/db.ts';
import { createRegistryClient, registryCredentials } from '../../infra/registry.ts';
import { loadTrustedKeys } from '../../signing/index.ts';
import { describeError, OukError } from '../../lib/errors.ts';
import type { PipelineQueues } from '../../queue/queues.ts';
import { clearRepairedFailures } from '../../queue/retry.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';

interface ImageLine extends SiteImage {
  repository: string;
  /** null: no registry configured */
  held: boolean | null;
  /** the digest the registry's tag points at */
  tagDigest: string | null;
}

export function registerOukImages(ouk: Command, cli: CliContext): void {
  ouk
    .command('images')
    .description("the OCI images the active kit carries and whether the site's registry (OUK_REGISTRY_URL) holds them")
    .option('--push', 'first push what the registry lacks, each image by the kit that carries it (a kit imported before a registry was configured, a registry replaced or wiped)', false)
    .option('--json', 'machine-readable output on stdout', false)
    .action(async (opts: { json: boolean; push: boolean }) => {
      const config = cli.config;
      // only --push changes anything (the import records of what it pushed): only then are migrations run
      const pool = await cli.db({ migrate: opts.push });
      const client = config.registryUrl ? createRegistryClient(config.registryUrl, registryCredentials(config.registryAccount)) : null;
      let pushed: ImagesPushed[] = [];
      if (opts.push) {
        pushed = await pushActiveImages({
          store: await cli.store(),
          pool,
          config,
          trustedKeys: () => loadTrustedKeys(config.trustedKeys),
          logger: await cli.logger(),
          progress: () => undefined,
          attempt: { number: 1, max: 1 },
          registry: client ? { client, prefix: config.registryPrefix } : null,
          now: () => new Date(),
        });
        if (!opts.json) {
          for (const x of pushed) {
            process.stdout.write(terminalLines([`pushed the images of ${x.version} (${x.importId}): ${x.result.images.map((i) => `${i.repository}:${i.tag} (${i.blobs.pushed} blobs, ${i.manifests.pushed} manifests)`).join(', ')}`]));
          }
          if (!pushed.length) process.stdout.write('nothing to push: the registry holds every image of the active kit\n');
        }
        if (pushed.length) await clearRepairedJobs(cli, pool, pushed.map((x) => x.importId));
      }
      const { version, images } = await activeKitImages(pool);
      const lines: ImageLine[] = [];
      for (const img of images) {
        const repository = `${config.registryPrefix}${img.name}`;
        const byDigest = client ? await client.manifestDigest(repository, img.indexDigest, INDEX_TYPES) : null;
        const tagDigest = client ? await client.manifestDigest(repository, img.tag, INDEX_TYPES) : null;
        lines.push({ ...img, repository, held: client ? byDigest === img.indexDigest && tagDigest === img.indexDigest : null, tagDigest });
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ activeVersion: version, registry: client?.url ?? null, ...(opts.push ? { pushed } : {}), images: lines }, null, 2)}\n`);
      } else if (!lines.length) {
        process.stdout.write(version ? terminalLines([`the active kit ${version} carries no images`]) : 'no active DB: import a kit first\n');
      } else {
        process.stdout.write(terminalLines([`images of the active kit ${version}${client ? `, registry ${client.url}` : ' (no registry configured: OUK_REGISTRY_URL)'}`]));
        for (const l of lines) {
          const held = l.held === null ? 'not checked' : l.held ? 'held' : l.tagDigest ? `NOT held (tag points at ${l.tagDigest})` : 'NOT held';
          process.stdout.write(terminalLines([`  ${l.repository}:${l.tag}  ${l.indexDigest}  ${l.platforms.map(platformLabel).join(', ')}  from ${l.version}  push ${l.pushState ?? 'pending'}  ${held}`]));
        }
      }
      const missing = lines.filter((l) => l.held === false);
      if (missing.length) {
        throw new OukError('REGISTRY_REJECTED', `the registry ${client!.url} does not hold ${missing.map((m) => `${m.repository}@${m.indexDigest}`).join(', ')}: \`stella ouk images --push\` pushes it`);
      }
    });
}

/** The failed images jobs of the imports a push just repaired are removed (Redis down: said, and left). */
async function clearRepairedJobs(cli: CliContext, pool: Pool, importIds: string[]): Promise<void> {
  let queues: PipelineQueues;
  try {
    queues = await cli.queues();
  } catch (e) {
    process.stderr.write(`warning: the images are pushed and recorded, but their failed jobs stay listed until Redis answers (${describeError(e)})\n`);
    return;
  }
  for (const id of importIds) await clearRepairedFailures({ pool, queues }, id);
}
