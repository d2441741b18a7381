/**
 * The site a dry run checks a kit against, opened read-only from the CLI's
 * context, in the import's order (PostgreSQL, Redis, the bucket): no
 * migration, no queue, no object. A database never imported into is an empty
 * site (the import would create the schema first); one whose schema lags is
 * read as it is, with a note (the import would migrate it first).
 */
import fs from 'node:fs';
import type { Manifest } from '../../bundle/manifest.ts';
import { pendingBase, type PolicyFlags } from '../../functions/common/policy.ts';
import { readActivePointer, type ActiveDbPointer } from '../../infra/active-db.ts';
import { checkSchema, type Pool } from '../../infra/db.ts';
import { getImport } from '../../infra/import-records.ts';
import type { Config } from '../../lib/config.ts';
import { isOukError } from '../../lib/errors.ts';
import { loadTrust, requireTrustedKeys, verifyKitFile, type TrustSource } from '../../signing/index.ts';
import type { CliContext } from '../context.ts';
import { requireBucket } from './bucket.ts';
import type { DryRunDeps } from './dry-run.ts';
import { readManifestOf } from './source.ts';
import { preflight } from './upload.ts';

const NOTHING: ActiveDbPointer = { activeImport: null, activeVersion: null, activeSchema: null, activeDigest: null, activatedAt: null, previousImport: null };

/** The trust the verify stage uses: OUK_TRUST_ROOT when set (the only trust then), else OUK_TRUSTED_KEYS. */
export async function siteTrustSource(config: Pick<Config, 'trustRoot' | 'trustedKeys'>, warn: (line: string) => void): Promise<TrustSource> {
  if (config.trustRoot) {
    if (config.trustedKeys.length) warn('warning: OUK_TRUST_ROOT and OUK_TRUSTED_KEYS are both set: the root of trust is the only trust, OUK_TRUSTED_KEYS is ignored');
    return { root: config.trustRoot, label: 'OUK_TRUST_ROOT' };
  }
  await requireTrustedKeys(config.trustedKeys);
  return { keys: config.trustedKeys, label: 'OUK_TRUSTED_KEYS' };
}

export interface DryRunSite {
  /** The deps of a dry run of the local tarball `file` (its side files beside it). */
  depsFor(file: string): Promise<DryRunDeps>;
  /** The services checks passed, in order. */
  checks: string[];
  notes: string[];
}

/** Opens the site read-only (PostgreSQL, Redis, the bucket), for a dry run of the kit that would go to bucket key `key`. */
export async function openDryRunSite(cli: CliContext, key: string, flags: PolicyFlags, warn: (line: string) => void): Promise<DryRunSite> {
  const config = cli.config;
  const checks: string[] = [];
  const notes: string[] = [];
  const pool = await cli.db({ check: false });
  let schema: 'present' | 'absent' = 'present';
  try {
    await checkSchema(pool);
  } catch (e) {
    if (!isOukError(e) || (e.code !== 'NOTHING_ACTIVE' && e.code !== 'SCHEMA_OUTDATED')) throw e;
    if (e.code === 'NOTHING_ACTIVE') {
      schema = 'absent';
      notes.push('database: no Stella OUK schema yet — the import would create it first');
    } else notes.push(`database: ${e.message.replace(/: start the API.*$/, '')} — the import would apply the migrations first`);
  }
  checks.push('database');
  await (await cli.redis()).ping();
  checks.push('queues');
  const store = await cli.store();
  await requireBucket(store, config);
  checks.push('bucket');

  const depsFor = async (file: string): Promise<DryRunDeps> => {
    const trust = await loadTrust(await siteTrustSource(config, warn));
    const size = fs.statSync(file).size;
    const now = new Date();
    return {
      now,
      maxSkewSeconds: config.maxClockSkewSeconds,
      flags,
      peekManifest: () => readManifestOf({ name: file, key, isUrl: false }),
      space: (manifest: Manifest) => preflight({ config, env: cli.env, pool }, manifest, size),
      verify: () => verifyKitFile(file, { trust, now, requireAttestation: config.requireAttestation }),
      activePointer: () => (schema === 'absent' ? Promise.resolve(NOTHING) : readActivePointer(pool)),
      activeKit: () => (schema === 'absent' ? Promise.resolve(null) : activeKit(pool)),
      pendingBase: (base) => (schema === 'absent' ? Promise.resolve(null) : pendingBase({ pool, store }, { importId: '', bucket: config.bucket, key }, base)),
    };
  };
  return { depsFor, checks, notes };
}

async function activeKit(pool: Pool): Promise<{ key: string; sha256: string | null } | null> {
  const pointer = await readActivePointer(pool);
  const rec = pointer.activeImport ? await getImport(pool, pointer.activeImport) : null;
  return rec ? { key: rec.objectKey, sha256: rec.digest } : null;
}
