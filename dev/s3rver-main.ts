/**
 * Runs the local S3 store: `node --import tsx dev/s3rver-main.ts`.
 *
 * Configured from the environment (and `.env`): listens on S3_ENDPOINT's host
 * and port (default 127.0.0.1:9000), keeps objects under
 * `$STELLA_STATE_DIR/s3` (default `.stella/s3`), creates OUK_BUCKET (`ouk`), and
 * POSTs MinIO-format events for `*.tar.gz` objects to
 * OUK_WEBHOOK_URL (default `http://127.0.0.1:$STELLA_API_PORT/hooks/minio`) with
 * `Authorization: Bearer $OUK_WEBHOOK_TOKEN` — what compose-stella.yml's MinIO
 * does with `mc event add ... --event put --suffix .tar.gz`.
 */
import fs from 'node:fs';
import { loadConfig } from '../lib/config.ts';
import { devPaths, resolveEnv } from '../infra/env.ts';
import { startS3rver } from './s3rver.ts';

const env = resolveEnv();
const cfg = loadConfig(env);
const paths = devPaths(env);
fs.mkdirSync(paths.s3Dir, { recursive: true });

const webhookUrl = env.OUK_WEBHOOK_URL || `http://127.0.0.1:${cfg.apiPort}/hooks/minio`;
const log = (msg: string): void => {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
};

const server = await startS3rver({
  host: cfg.store.endPoint,
  port: cfg.store.port,
  directory: paths.s3Dir,
  buckets: [cfg.bucket],
  webhook: { url: webhookUrl, token: cfg.webhookToken },
  suffix: env.OUK_WEBHOOK_SUFFIX ?? '.tar.gz',
  silent: !/^(1|true|yes|on)$/i.test(env.S3RVER_VERBOSE ?? ''),
  log,
  onEvent: (ev) => log(`event ${ev.EventName} ${ev.Key} -> ${webhookUrl}`),
});
log(`s3rver listening on ${server.endpoint}, bucket ${cfg.bucket}, data in ${paths.s3Dir}, webhook ${webhookUrl}${cfg.webhookToken ? ' (bearer token set)' : ' (no token)'}`);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
