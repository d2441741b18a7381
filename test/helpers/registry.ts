/**
 * A real OCI registry for a test file: Debian's docker-registry
 * (dev/registry.ts) on a free loopback port with its storage in a temp
 * directory. `stop()` and `start()` take it down and bring it back on the same
 * port with the same storage (an outage); `close()` at the end.
 */
import { startRegistry, type LocalRegistry } from '../../dev/registry.ts';
import { freePort, tmpDir } from './services.ts';

export interface TestRegistry extends LocalRegistry {
  close(): Promise<void>;
  /** GET /v2/<repo>/manifests/<ref> with the OCI index and manifest types accepted. */
  manifest(repo: string, ref: string): Promise<{ status: number; digest: string | null; mediaType: string | null; body: string }>;
}

export async function startTestRegistry(tag: string, auth?: string[]): Promise<TestRegistry> {
  const reg = await startRegistry({ directory: tmpDir(`registry-${tag}`), port: await freePort(), ...(auth ? { auth } : {}) });
  return {
    ...reg,
    close: () => reg.stop(),
    async manifest(repo, ref) {
      const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
        headers: {
          accept: [
            'application/vnd.oci.image.index.v1+json',
            'application/vnd.oci.image.manifest.v1+json',
            'application/vnd.docker.distribution.manifest.list.v2+json',
            'application/vnd.docker.distribution.manifest.v2+json',
          ].join(', '),
        },
      });
      return { status: r.status, digest: r.headers.get('docker-content-digest'), mediaType: r.headers.get('content-type'), body: await r.text() };
    },
  };
}
