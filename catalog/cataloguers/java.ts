/**
 * Java: `META-INF/maven/<group>/<artifact>/pom.properties` inside jars,
 * wars, ears (and Jenkins' hpi/jpi), and inside the archives those carry
 * (`WEB-INF/lib/*.jar`, Spring Boot's `BOOT-INF/lib/*.jar`), nested at most
 * maxArchiveDepth deep. A zip needs its central directory, so an archive is
 * read into memory: at most maxArchiveBytes, each inner entry at most that
 * too, at most maxArchiveEntries entries looked at per archive. An archive
 * without pom.properties (no Maven coordinates) is not catalogued.
 */
import yauzl from 'yauzl';
import type { CatalogLimits } from '../limits.ts';
import type { ParsedPackage } from '../model.ts';
import { type Cataloguer, type ReadContext, sane } from './cataloguer.ts';

const ARCHIVE = /\.(?:jar|war|ear|hpi|jpi)$/i;
const POM_PROPERTIES = /^META-INF\/maven\/[^/]+\/[^/]+\/pom\.properties$/;

function properties(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith('!')) continue;
    const eq = t.search(/[=:]/);
    if (eq > 0) m.set(t.slice(0, eq).trim(), t.slice(eq + 1).trim());
  }
  return m;
}

function openZip(buf: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => yauzl.fromBuffer(buf, { lazyEntries: true, strictFileNames: false, validateEntrySizes: true }, (e, z) => (e ? reject(e) : resolve(z))));
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (e, s) => {
      if (e) return reject(e);
      const chunks: Buffer[] = [];
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) s.destroy(new Error(`inflates past ${max} bytes`));
        else chunks.push(c);
      });
      s.on('error', reject);
      s.on('end', () => resolve(Buffer.concat(chunks)));
    }),
  );
}

async function walk(buf: Buffer, where: string, depth: number, limits: CatalogLimits, ctx: ReadContext, out: ParsedPackage[]): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(buf);
  } catch (e) {
    ctx.skip(`not a readable zip archive (${(e as Error).message})`, where);
    return;
  }
  try {
    let seen = 0;
    for (;;) {
      const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
        zip.once('entry', resolve);
        zip.once('end', () => resolve(null));
        zip.once('error', reject);
        zip.readEntry();
      });
      zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
      if (!entry) break;
      if (++seen > limits.maxArchiveEntries) {
        ctx.skip(`more than ${limits.maxArchiveEntries} entries: the rest not looked at`, where);
        break;
      }
      const name = entry.fileName;
      const inner = `${where}!/${name}`;
      if (POM_PROPERTIES.test(name)) {
        if (entry.uncompressedSize > limits.maxMetaBytes) {
          ctx.skip(`pom.properties of ${entry.uncompressedSize} bytes: not read`, inner);
          continue;
        }
        const p = properties((await readEntry(zip, entry, limits.maxMetaBytes)).toString('utf8'));
        const group = p.get('groupId');
        const artifact = p.get('artifactId');
        const version = p.get('version');
        if (sane(group) && sane(artifact) && sane(version)) out.push({ type: 'maven', namespace: group, name: artifact, version, path: inner });
        else ctx.skip('pom.properties without a readable groupId, artifactId and version', inner);
      } else if (ARCHIVE.test(name)) {
        if (depth >= limits.maxArchiveDepth) {
          ctx.skip(`an archive nested more than ${limits.maxArchiveDepth} deep: not opened`, inner);
          continue;
        }
        if (entry.uncompressedSize > limits.maxArchiveBytes) {
          ctx.skip(`a nested archive of ${entry.uncompressedSize} bytes, over the ${limits.maxArchiveBytes}-byte bound: not opened`, inner);
          continue;
        }
        let nested: Buffer;
        try {
          nested = await readEntry(zip, entry, limits.maxArchiveBytes);
        } catch (e) {
          ctx.skip(`cannot be read (${(e as Error).message})`, inner);
          continue;
        }
        await walk(nested, inner, depth + 1, limits, ctx, out);
      }
    }
  } catch (e) {
    ctx.skip(`the archive breaks off (${(e as Error).message}): what was read before is kept`, where);
  } finally {
    zip.close();
  }
}

export const java: Cataloguer = {
  name: 'java',
  wants: (p) => ARCHIVE.test(p),
  maxBytes: (l) => l.maxArchiveBytes,
  async read(content, ctx) {
    const out: ParsedPackage[] = [];
    await walk(content, `/${ctx.path}`, 1, ctx.limits, ctx, out);
    return out;
  },
};
