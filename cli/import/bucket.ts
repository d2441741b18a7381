/**
 * The import's first look at the object store: the bucket must exist
 * (STORE_UNAVAILABLE naming the bucket and the endpoint), and an unreachable
 * store is STORE_UNAVAILABLE too. Reads only.
 */
import { storeUnavailable, type ObjectStore } from '../../infra/store.ts';
import type { Config } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';

export async function requireBucket(store: ObjectStore, config: Pick<Config, 'bucket' | 's3Endpoint'>): Promise<void> {
  try {
    if (!(await store.bucketExists(config.bucket))) {
      throw new OukError('STORE_UNAVAILABLE', `bucket ${config.bucket} does not exist on ${config.s3Endpoint}: create it (npm run dev:up does locally) or set OUK_BUCKET`);
    }
  } catch (e) {
    if (e instanceof OukError) throw e;
    throw storeUnavailable(e);
  }
}
