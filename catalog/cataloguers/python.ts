/**
 * Python: `*.dist-info/METADATA` (wheels, pip) and `*.egg-info/PKG-INFO`
 * (setuptools; also an `*.egg-info` that is itself the file, as Debian
 * installs some): the Name and Version headers. The purl name is PEP 503
 * normalised (lower case, runs of `-_.` as one `-`).
 */
import { type Cataloguer, headerFields, sane } from './cataloguer.ts';

export const python: Cataloguer = {
  name: 'python',
  wants: (p) => /\.dist-info\/METADATA$/.test(p) || /\.egg-info\/PKG-INFO$/.test(p) || /\/[^/]+\.egg-info$/.test(p),
  maxBytes: (l) => l.maxMetaBytes,
  read(content, ctx) {
    const f = headerFields(content.toString('utf8'));
    const name = f.get('name');
    const version = f.get('version');
    if (!sane(name) || !sane(version)) {
      ctx.skip('no readable Name and Version');
      return [];
    }
    return [{ type: 'pypi', name: name.toLowerCase().replace(/[-_.]+/g, '-'), version }];
  },
};
