/**
 * The verify stage's cost on one trust and the other (not a test, no
 * assertion on time): `node --import tsx bench/verify-trust.ts [ADVISORIES]`
 * (default 20,000). One synthetic kit, uploaded under fresh keys to s3rver,
 * verified by functions/verify.ts twice on bare keys (OUK_TRUSTED_KEYS: the
 * `.sig` and a manifest peek) and twice on a pinned root (OUK_TRUST_ROOT: the
 * one-read check of signing/kit/verify-stream.ts, the reader stopping after
 * the manifest and the carried roots), alternating; prints wall and CPU time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { makeBundle, pipelineFixture, putBundle, registerImport, stageContext } from '../test/pipeline-fixtures.ts';
import { verify } from '../functions/verify.ts';
import { createRoot, serializeRoot } from '../signing/root/index.ts';
import { generateKeyPair } from '../signing/index.ts';

const n = Number(process.argv[2] ?? 20000);
const fx = await pipelineFixture('bench-verify');
try {
  const b = await makeBundle(fx, 'stella-ouk-2026-11-20.tar.gz', { version: '2026-11-20', advisories: n });
  const rootKp = await generateKeyPair();
  const root = createRoot({ root: { keys: [createPublicKey(rootKp.publicKeyPem)], threshold: 1 }, kit: { keys: [createPublicKey(fs.readFileSync(fx.publicKey))], threshold: 1 }, expires: new Date(Date.now() + 30 * 86400_000), signers: [createPrivateKey(rootKp.privateKeyPem)] });
  const rootPath = path.join(fx.dir, 'root.json');
  fs.writeFileSync(rootPath, serializeRoot(root));
  const size = fs.statSync(b.path).size;
  for (const [label, trustRoot] of [['bare keys', undefined], ['pinned root', rootPath], ['bare keys', undefined], ['pinned root', rootPath]] as const) {
    const key = `k-${label.replace(' ', '-')}-${Math.random().toString(36).slice(2, 8)}.tar.gz`;
    const p = await putBundle(fx, b.path, key);
    await registerImport(fx, p);
    const ctx = stageContext(fx, { config: { bucket: fx.s3.bucket, trustedKeys: [fx.publicKey], trustRoot } });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await verify({ importId: p.importId, bucket: p.bucket, key: p.key, etag: p.etag }, ctx);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    console.log(`${label}: ${size} bytes, ${n} advisories: wall ${ms.toFixed(0)} ms, cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`);
  }
} finally {
  await fx.close();
}
