/**
 * The extra tables' part of a delta (bundle/extra-tables.ts): per table, a
 * streaming merge-join of the base's member with the new one, key group by
 * key group (both sorted bytewise). A key only in the new DB, or whose rows
 * differ, is carried with all its rows; a key only in the base goes to the
 * table's removed list. A table neither side has is left out; one only the
 * base has is removed whole (every key listed), one only the new DB has is
 * carried whole. EPSS rescored overnight is exactly its changed rows.
 */
import path from 'node:path';
import { EXTRA_TABLES, type ExtraTableDef } from '../bundle/extra-tables.ts';
import { OukError } from '../lib/errors.ts';
import type { DbBuild } from './db.ts';
import type { DeltaBase } from './delta-base.ts';
import { cellCompare, fileLines, firstCell } from './lines.ts';
import { MemberFile, type WrittenMember } from './member-file.ts';

export interface ExtraDeltaMember {
  member: WrittenMember;
  role: 'db' | 'removed';
}

/** Key groups of a sorted member: every line of one key together. */
async function* groups(file: string | undefined, what: string): AsyncGenerator<{ key: string; lines: string[] }> {
  if (file === undefined) return;
  let key: string | null = null;
  let lines: string[] = [];
  for await (const line of fileLines(file)) {
    const k = firstCell(line);
    if (key !== null && k !== key) {
      if (cellCompare(key, k) > 0) throw new OukError('INTERNAL', `${what} is not sorted at ${k}: this is a bug in the builder`);
      yield { key, lines };
      lines = [];
    }
    key = k;
    lines.push(line);
  }
  if (key !== null) yield { key, lines };
}

async function deltaOne(t: ExtraTableDef, baseFile: string | undefined, newFile: string | undefined, workDir: string): Promise<ExtraDeltaMember[]> {
  const rows = new MemberFile(t.member, path.join(workDir, `delta-${t.name}.tsv`));
  const removed = new MemberFile(t.removedMember, path.join(workDir, `delta-${t.name}.removed.tsv`));
  try {
    const b = groups(baseFile, `the base's ${t.member}`);
    const n = groups(newFile, `the new ${t.member}`);
    type Group = { key: string; lines: string[] };
    const next = async (g: AsyncGenerator<Group>): Promise<Group | null> => {
      const r = await g.next();
      return r.done ? null : r.value;
    };
    let bg = await next(b);
    let ng = await next(n);
    while (bg || ng) {
      const c = !bg ? 1 : !ng ? -1 : cellCompare(bg.key, ng.key);
      if (c < 0) {
        await removed.writeRows([`${bg!.key}\n`]);
        bg = await next(b);
      } else if (c > 0) {
        await rows.writeRows(ng!.lines.map((l) => `${l}\n`));
        ng = await next(n);
      } else {
        const same = bg!.lines.length === ng!.lines.length && bg!.lines.every((l, i) => l === ng!.lines[i]);
        if (!same) await rows.writeRows(ng!.lines.map((l) => `${l}\n`));
        bg = await next(b);
        ng = await next(n);
      }
    }
    return [
      { member: await rows.close(), role: 'db' },
      { member: await removed.close(), role: 'removed' },
    ];
  } catch (e) {
    rows.destroy();
    removed.destroy();
    throw e;
  }
}

export async function deltaExtras(base: DeltaBase, db: DbBuild, workDir: string): Promise<ExtraDeltaMember[]> {
  const out: ExtraDeltaMember[] = [];
  for (const t of EXTRA_TABLES) {
    const baseFile = base.extras.get(t.name);
    const newFile = db.extras.find((m) => m.table === t.name)?.file;
    if (baseFile === undefined && newFile === undefined) continue;
    out.push(...(await deltaOne(t, baseFile, newFile, workDir)));
  }
  return out;
}
