/**
 * `stella ouk status [--json] [--limit N]`: the active DB (version, age, counts,
 * feeds with their ages against their OUK_MAX_AGE budgets), the clock against
 * the newest signed time (lib/freshness.ts), the previous DB kept for
 * rollback, recent imports with their stages, and the activation history.
 * Reads PostgreSQL only (works with Redis down), and changes nothing: no
 * schema is NOTHING_ACTIVE, an old one SCHEMA_OUTDATED.
 *
 * JSON: {"active": {"version", "activatedAt", "ageSeconds", "stale", "counts", "feeds": [{"name", "snapshot",
 *                   "records", "ageSeconds", "budgetSeconds", "stale"}], ...} | null,
 *        "freshness": {"policy", "budgets", "budgetsFrom", "clock": {...}, "stale", "notes"},
 *        "warnings": [...], "previous": {...} | null, "imports": [{"id", "version", "state", "stages"}],
 *        "history": [...], "airgap": {"mode": "air-gapped" | "connected", "guard", "allowed"}}
 */
import type { Command } from 'commander';
import type { Pool } from '../../infra/db.ts';
import { airgapStatus } from '../../lib/airgap.ts';
import { formatAge, formatBudget, type ClockCheck, type FeedAge, type FreshnessRule, type StalePolicy } from '../../lib/freshness.ts';
import { readFreshness } from '../../infra/freshness.ts';
import { TABLES } from '../../bundle/tables.ts';
import { STAGES } from '../../functions/context.ts';
import { importVersion, recentImports, type ImportRecord } from '../../infra/import-records/index.ts';
import { readActivePointer } from '../../infra/active-db.ts';
import { terminalText as t } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';
import type { VerifyResult } from '../../functions/verify.ts';
import { currentRootSummary } from '../../functions/common/site-trust.ts';
import { rootExpiry, type RootExpiry } from '../../lib/root-expiry.ts';
import type { ConfiguredTrust } from '../../signing/index.ts';
import { attestedLines } from '../import/verified-lines.ts';
import { activationHistory, lastActivationOf } from '../../infra/activations.ts';
import type { CryptoPolicy } from '../../lib/crypto-policy.ts';

export interface StatusReport {
  active: {
    importId: string;
    version: string;
    kind: string | null;
    activatedAt: string;
    /** since activation, counted from the later of the host clock and the newest signed time */
    ageSeconds: number | null;
    /** a feed is over its OUK_MAX_AGE budget */
    stale: boolean;
    schema: string | null;
    digest: string | null;
    counts: Record<string, number>;
    feeds: Array<FeedAge & { records: number | null; skipped: number | null }>;
  } | null;
  freshness: {
    policy: StalePolicy;
    /** feed -> budget in seconds */
    budgets: Record<string, number>;
    budgetsFrom: FreshnessRule['source'];
    clock: ClockCheck;
    stale: string[];
    notes: string[];
  };
  /** the freshness warnings (clock behind, stale feeds, no DB) and configuration notes, one line each */
  warnings: string[];
  previous: { importId: string; version: string | null } | null;
  imports: Array<{
    id: string;
    key: string;
    version: string | null;
    kind: string | null;
    state: string;
    createdAt: string;
    error: { code: string | null; message: string | null } | null;
    stages: Record<string, unknown>;
  }>;
  history: Array<{ seq: number; action: string; importId: string | null; version: string; kind: string; at: string }>;
  /** The site's root of trust (null: bare keys, OUK_TRUSTED_KEYS); set by the command, not by collectStatus. */
  trust?: (RootExpiry & { rootVersion: number }) | null;
}

/** The site's current root and its expiry (lib/root-expiry.ts); its warning joins the report's. */
export async function withTrust(r: StatusReport, config: ConfiguredTrust, pool: Pool, now: Date = new Date()): Promise<StatusReport> {
  const root = await currentRootSummary(config, pool);
  if (!root) return { ...r, trust: null };
  const e = rootExpiry(root, now);
  return { ...r, trust: { ...e, rootVersion: e.version }, warnings: e.warning ? [...r.warnings, e.warning] : r.warnings };
}

export async function collectStatus(pool: Pool, rule: FreshnessRule, limit: number, now: Date = new Date()): Promise<StatusReport> {
  const pointer = await readActivePointer(pool);
  const fresh = await readFreshness(pool, rule, now);
  const last = pointer.activeImport
    ? await lastActivationOf(pool, pointer.activeImport)
    : undefined;
  const imports = await recentImports(pool, limit);
  const prevVersion = pointer.previousImport
    ? await importVersion(pool, pointer.previousImport)
    : null;
  const history = await activationHistory(pool, limit);
  return {
    active:
      pointer.activeImport && pointer.activeVersion
        ? {
            importId: pointer.activeImport,
            version: pointer.activeVersion,
            kind: last?.kind ?? null,
            activatedAt: (pointer.activatedAt ?? new Date(0)).toISOString(),
            ageSeconds: fresh.activeDb?.ageSeconds ?? null,
            stale: fresh.stale.length > 0,
            schema: pointer.activeSchema,
            digest: pointer.activeDigest,
            counts: inTableOrder(last?.counts ?? {}),
            feeds: fresh.feeds.map((f) => {
              const row = last?.feeds.find((x) => x.name === f.name);
              return { ...f, records: row?.records ?? null, skipped: row?.skipped ?? null };
            }),
          }
        : null,
    freshness: { policy: rule.policy, budgets: { ...rule.budgets }, budgetsFrom: rule.source, clock: fresh.clock, stale: fresh.stale, notes: rule.notes },
    warnings: [...fresh.warnings, ...rule.notes],
    previous: pointer.previousImport ? { importId: pointer.previousImport, version: prevVersion } : null,
    imports: imports.map((r: ImportRecord) => ({
      id: r.id,
      key: r.objectKey,
      version: r.version,
      kind: r.kind,
      state: r.state,
      createdAt: r.createdAt.toISOString(),
      error: r.errorCode || r.error ? { code: r.errorCode, message: r.error } : null,
      stages: Object.fromEntries(STAGES.map((st) => [st, r.stages[st] ?? null])),
    })),
    history: history.map((h) => ({ seq: Number(h.seq), action: h.action, importId: h.import_id, version: h.version, kind: h.kind, at: new Date(h.at).toISOString() })),
  };
}

/** Counts keyed in bundle/tables.ts order (jsonb does not keep key order). */
function inTableOrder(counts: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of TABLES) if (t.name in counts) out[t.name] = counts[t.name];
  for (const [k, v] of Object.entries(counts)) if (!(k in out)) out[k] = v;
  return out;
}

/** `nvd 1234 (snapshot …, 1d 2h old, budget 3d)`; a stale one says so. */
function feedLine(f: NonNullable<StatusReport['active']>['feeds'][number]): string {
  const parts = [f.snapshot ? `snapshot ${t(f.snapshot)}` : 'no snapshot time'];
  if (f.ageSeconds !== null) parts.push(`${formatAge(f.ageSeconds)} old`);
  if (f.budgetSeconds !== null) parts.push(f.stale ? `STALE: over its ${formatBudget(f.budgetSeconds)} budget` : `budget ${formatBudget(f.budgetSeconds)}`);
  return `${t(f.name)}${f.records === null ? '' : ` ${t(f.records)}`} (${parts.join(', ')})`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/**
 * The human report. Every value from outside — object keys, kit versions and
 * kinds, feed names, error messages — goes through terminalText: a key holding
 * `\e]0;…\a` or a newline prints as visible escapes on its own line.
 */
export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  if (r.active) {
    const a = r.active;
    out.push(`Active DB   ${t(a.version)} (${t(a.kind ?? 'full')}), activated ${a.activatedAt}, ${a.ageSeconds === null ? '' : `${formatAge(a.ageSeconds)} old`}`);
    out.push(`            ${Object.entries(a.counts).map(([table, n]) => `${t(table)} ${t(n)}`).join(', ') || 'no counts recorded'}`);
    if (a.feeds.length) out.push(`            feeds: ${a.feeds.map(feedLine).join('; ')}`);
    out.push(`            import ${a.importId}, schema ${t(a.schema)}`);
    const verify = r.imports.find((i) => i.id === a.importId)?.stages.verify as { result?: VerifyResult } | null | undefined;
    for (const line of attestedLines(verify?.result ?? ({} as VerifyResult))) out.push(`            ${line}`);
  } else out.push('Active DB   none');
  out.push(`Previous    ${r.previous ? `${t(r.previous.version ?? '?')} (import ${r.previous.importId}; \`stella ouk rollback\` re-activates it)` : 'none kept'}`);
  if (r.trust !== undefined) {
    const tr = r.trust;
    out.push(
      tr
        ? `Trust       root v${tr.version} (${t(tr.source)}), expires ${t(tr.expires)}${tr.expired ? ': EXPIRED' : tr.expiresSoon ? ` (in ${Math.floor(tr.secondsLeft / 86_400)} days: get the next root)` : ''}`
        : 'Trust       OUK_TRUSTED_KEYS (bare keys: no root of trust, nothing expires; pin one with OUK_TRUST_ROOT)',
    );
  }
  const f = r.freshness;
  const c = f.clock;
  out.push(
    `Clock       host ${c.hostTime}, newest signed time ${c.signedTime ?? 'none yet'}${c.behind ? `: the host clock is BEHIND by ${formatAge(c.behindSeconds)}, ages are counted from the signed time` : ''}`,
  );
  const budgets = Object.entries(f.budgets).map(([feed, sec]) => `${feed}:${formatBudget(sec)}`).join(',') || 'none';
  out.push(`Freshness   budgets ${budgets} (${f.budgetsFrom === 'default' ? 'default; OUK_MAX_AGE sets them' : f.budgetsFrom}), OUK_STALE_POLICY=${f.policy}${f.stale.length ? `, stale: ${f.stale.map((x) => t(x)).join(', ')}` : ''}`);
  for (const w of r.warnings) out.push(`WARNING     ${t(w)}`);
  out.push('');
  if (r.imports.length === 0) out.push('No imports yet: drop a bundle into the bucket or run `stella ouk import FILE`.');
  else {
    out.push(`${pad('IMPORT', 26)}${pad('VERSION', 14)}${pad('STATE', 13)}${STAGES.map((s) => pad(s.toUpperCase(), 10)).join('')}KEY`);
    for (const i of r.imports) {
      const stages = STAGES.map((s) => pad(t((i.stages[s] as { state?: string } | null)?.state ?? '-'), 10)).join('');
      out.push(`${pad(i.id, 26)}${pad(t(i.version ?? '?'), 14)}${pad(t(i.state), 13)}${stages}${t(i.key)}`);
      if (i.state === 'failed' && i.error) out.push(`  └ ${t(i.error.code)}: ${t(i.error.message)}`);
      if (i.state === 'quarantined' && i.error) out.push(`  └ ${t(i.error.code)}, quarantined, never retried: \`stella ouk quarantine show ${i.id}\``);
    }
  }
  if (r.history.length) {
    out.push('');
    out.push('History (newest first)');
    for (const h of r.history) out.push(`  ${h.at}  ${pad(t(h.action), 9)}${pad(t(h.version), 14)}${pad(t(h.kind), 6)} ${h.importId ?? ''}`);
  }
  return out.join('\n') + '\n';
}

/** `Crypto      policy fips (STELLA_CRYPTO_POLICY): …` — the algorithms kits, roots and tokens may use here. */
export function cryptoPolicyLine(p: CryptoPolicy): string {
  return `Crypto      policy ${p.name} (STELLA_CRYPTO_POLICY): ${p.summary}`;
}

function cryptoPolicyJson(p: CryptoPolicy): { name: string; kitSuites: readonly string[]; rootSuites: readonly string[]; tokenAlgs: readonly string[] } {
  return { name: p.name, kitSuites: p.kitSuites, rootSuites: p.rootSuites, tokenAlgs: p.tokenAlgs };
}

export function registerOukStatus(ouk: Command, cli: CliContext): void {
  ouk
    .command('status')
    .description('the active DB (version, age, counts, feeds), recent imports and their stages, and the activation history')
    .option('--json', 'machine-readable output', false)
    .option('--limit <n>', 'how many recent imports and history entries', (v) => Number.parseInt(v, 10), 10)
    .action(async (opts: { json?: boolean; limit: number }) => {
      const pool = await cli.db();
      const report = await withTrust(await collectStatus(pool, cli.config.freshness, opts.limit), cli.config, pool);
      const airgap = airgapStatus(cli.config);
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ ...report, airgap: { mode: airgap.mode, guard: airgap.guard, allowed: airgap.allowed }, cryptoPolicy: cryptoPolicyJson(cli.config.cryptoPolicy) }, null, 2)}\n`
          : `${renderStatus(report)}\n${airgap.line}\n${cryptoPolicyLine(cli.config.cryptoPolicy)}\n`,
      );
    });
}
