/**
 * The local OCI registry as a dev:up service: Debian's docker-registry
 * (dev/registry.ts) on OUK_REGISTRY_URL's loopback port (default
 * 127.0.0.1:5000), storage under .stella/registry/. Runs in the foreground
 * until SIGTERM (dev:down), stopping the registry with it.
 */
import path from 'node:path';
import { devPaths, resolveEnv } from '../infra/env.ts';
import { loadConfig } from '../lib/config.ts';
import { startRegistry } from './registry.ts';

const env = resolveEnv();
const cfg = loadConfig(env);
const url = new URL(cfg.registryUrl ?? 'http://127.0.0.1:5000');
const reg = await startRegistry({ directory: path.join(devPaths(env).stateDir, 'registry'), port: Number(url.port || 5000) });
console.log(`docker-registry serving ${reg.url} (pid ${reg.pid()})`);
const stop = (): void => {
  void reg.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => undefined, 1 << 30);
