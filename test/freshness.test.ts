/**
 * Freshness with a clock that may be wrong.
 *
 *  - The rule (lib/freshness.ts, lib/config.ts): OUK_MAX_AGE and
 *    OUK_STALE_POLICY parsed strictly, ages counted from the later of the host
 *    clock and the newest signed time, on injected clocks.
 *  - The signed time in PostgreSQL (infra/signed-time.ts): the verify stage
 *    records a verified kit's `created`, and it never goes back.
 *  - The real API and CLI processes, against a kit created "today" (this
 *    test's clock) and made active, its feeds nvd 1 day old, osv 3 days (over
 *    the default 2d budget), ghsa 1 hour, kev 2 days: run under faketime a week
 *    earlier, `stella ouk status`, /readyz, /metrics and every scan (API and
 *    `stella scan`) say the clock is behind and count every age from the
 *    signed time; osv warns under `warn` and is refused with 503 / exit 100
 *    DB_STALE under `refuse-scans`; within their budgets, on the right clock,
 *    everything is quiet; a bad OUK_MAX_AGE stops the API and the CLI at
 *    start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FEEDS as BUILDER_FEEDS } from '../builder/model.ts';
import { verify } from '../functions/verify.ts';
import { readFreshness } from '../infra/freshness.ts';
import { advanceSignedTime, readSignedTime } from '../infra/signed-time.ts';
import { loadConfig } from '../lib/config.ts';
import { EXIT_CODES, isOukError } from '../lib/errors.ts';
import { assessFreshness, formatBudget, KNOWN_FEEDS, parseMaxAge, staleRefusal, type FeedAge, type FreshnessRule } from '../lib/freshness.ts';
import { startService, type ServiceProcess } from './helpers/processes.ts';
import { freePort, runStella, testRedisPrefix, type TestRedisPrefix } from './helpers/services.ts';
import { fixtureEnv, makeBundle, pipelineFixture, putBundle, registerImport, runStages, stageContext, waitFor, type PipelineFixture } from './pipeline-fixtures.ts';

const HOUR = 3600;
const DAY = 86_400;

/** The rule of the default configuration with the given variables. */
function rule(env: Record<string, string> = {}): FreshnessRule {
  return loadConfig(env).freshness;
}

function usageError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => isOukError(e) && e.code === 'USAGE' && message.test(e.message));
}

describe('the rule', () => {
  test('OUK_MAX_AGE: feed:duration pairs, strictly; the default is the documented example, `none` is no budgets', () => {
    assert.deepEqual(parseMaxAge('nvd:3d,osv:2d,ghsa:2d,kev:7d,epss:7d'), { nvd: 3 * DAY, osv: 2 * DAY, ghsa: 2 * DAY, kev: 7 * DAY, epss: 7 * DAY });
    assert.deepEqual(parseMaxAge(' NVD : 1d12h , csaf:90m,epss:1w '), { nvd: 36 * HOUR, csaf: 90 * 60, epss: 7 * DAY });
    assert.deepEqual(parseMaxAge('none'), {});
    assert.deepEqual(rule().budgets, { nvd: 3 * DAY, osv: 2 * DAY, ghsa: 2 * DAY, kev: 7 * DAY, epss: 7 * DAY });
    assert.equal(rule().source, 'default');
    assert.equal(rule().policy, 'warn');
    assert.equal(rule().toleranceSeconds, 600, 'the tolerance is OUK_MAX_CLOCK_SKEW_SECONDS');
    assert.equal(rule({ OUK_MAX_CLOCK_SKEW_SECONDS: '60' }).toleranceSeconds, 60);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3d,foo:1d' }), /^OUK_MAX_AGE=nvd:3d,foo:1d: unknown feed "foo": the feeds are nvd, osv, ghsa, csaf, kev, epss$/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3' }), /feed nvd: "3" is not a duration: give a number and a unit/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3x' }), /feed nvd: "3x" is not a duration/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:-1d' }), /"-1d" is not a duration/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:0d' }), /"0d" is zero/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3d,,osv:2d' }), /item 2 is empty/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3d,' }), /item 2 is empty/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:3d,nvd:2d' }), /feed nvd is given twice/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd' }), /"nvd" is not feed:duration/);
    usageError(() => loadConfig({ OUK_MAX_AGE: 'nvd:99999w' }), /longer than ten years/);
    usageError(() => loadConfig({ OUK_STALE_POLICY: 'refuse' }), /^OUK_STALE_POLICY=refuse is not a policy: give warn .* or refuse-scans/);
    assert.equal(rule({ OUK_STALE_POLICY: 'refuse-scans' }).policy, 'refuse-scans');
    assert.equal(EXIT_CODES.USAGE, 2);
  });

  test('OUK_WARN_AGE_HOURS is deprecated: alone it is one budget for every feed, beside OUK_MAX_AGE it is ignored; either way a note says so', () => {
    const old = rule({ OUK_WARN_AGE_HOURS: '48' });
    assert.equal(old.source, 'OUK_WARN_AGE_HOURS');
    assert.deepEqual(old.budgets, Object.fromEntries(KNOWN_FEEDS.map((f) => [f, 48 * HOUR])));
    assert.match(old.notes.join(), /OUK_WARN_AGE_HOURS=48 is deprecated: .*budget of 48h for every feed.*set OUK_MAX_AGE/);
    const both = rule({ OUK_WARN_AGE_HOURS: '48', OUK_MAX_AGE: 'nvd:1d' });
    assert.equal(both.source, 'OUK_MAX_AGE');
    assert.deepEqual(both.budgets, { nvd: DAY });
    assert.match(both.notes.join(), /OUK_WARN_AGE_HOURS=48 is deprecated and ignored beside OUK_MAX_AGE/);
    assert.deepEqual(rule().notes, []);
    usageError(() => loadConfig({ OUK_WARN_AGE_HOURS: 'soon' }), /OUK_WARN_AGE_HOURS=soon is not a whole number of hours/);
  });

  test('every feed a kit can carry is a known feed', () => {
    for (const f of [...BUILDER_FEEDS, 'kev', 'epss']) assert.ok((KNOWN_FEEDS as readonly string[]).includes(f), f);
    assert.equal(KNOWN_FEEDS.length, BUILDER_FEEDS.length + 2);
  });

  test('ages count from the later of the host clock and the signed time; behind by more than the tolerance is said, within it not', () => {
    const signed = new Date('2027-05-10T12:00:00Z');
    const feeds = [
      { name: 'nvd', snapshot: '2027-05-09T12:00:00Z' },
      { name: 'osv', snapshot: '2027-05-07T12:00:00Z' },
      { name: 'csaf', snapshot: '2027-01-01T00:00:00Z' },
      { name: 'kev', snapshot: null },
    ];
    const active = { version: '2027-05-10', activatedAt: new Date('2027-05-10T13:00:00Z'), feeds };
    const r = rule({ OUK_MAX_AGE: 'nvd:3d,osv:2d,kev:7d' });

    // a week behind: every age from the signed time, exactly
    const behind = assessFreshness({ hostNow: new Date('2027-05-03T12:00:00Z'), signedTime: signed, active, rule: r });
    assert.equal(behind.clock.behind, true);
    assert.equal(behind.clock.behindSeconds, 7 * DAY);
    assert.equal(behind.clock.ageFrom, signed.toISOString());
    assert.deepEqual(
      behind.feeds.map((f) => [f.name, f.ageSeconds, f.budgetSeconds, f.stale]),
      [
        ['nvd', DAY, 3 * DAY, false],
        ['osv', 3 * DAY, 2 * DAY, true],
        ['csaf', 129 * DAY + 12 * HOUR, null, false],
        ['kev', null, 7 * DAY, true],
      ],
    );
    assert.equal(behind.activeDb?.ageSeconds, 0, 'activated after the signed time, on a clock that was right then');
    assert.deepEqual(behind.stale, ['osv', 'kev']);
    assert.match(behind.warnings[0]!, /^this host's clock \(2027-05-03T12:00:00\.000Z\) is 7d 0h behind the newest signed time this site has seen \(2027-05-10T12:00:00\.000Z, the created time of a verified kit\): ages are counted from the signed time/);
    assert.match(behind.warnings[1]!, /^feed osv is 3d 0h old \(snapshot 2027-05-07T12:00:00\.000Z\), over its budget of 2d \(OUK_MAX_AGE\)/);
    assert.match(behind.warnings[2]!, /^feed kev of the active DB has no snapshot time/);

    // the clock right: from the host clock
    const right = assessFreshness({ hostNow: new Date('2027-05-10T18:00:00Z'), signedTime: signed, active, rule: r });
    assert.equal(right.clock.behind, false);
    assert.equal(right.clock.behindSeconds, 0);
    assert.equal(right.feeds[0]!.ageSeconds, DAY + 6 * HOUR);
    assert.equal(right.activeDb?.ageSeconds, 5 * HOUR);

    // behind by the tolerance: not said, ages still from the signed time
    const edge = assessFreshness({ hostNow: new Date(signed.getTime() - 600_000), signedTime: signed, active, rule: r });
    assert.equal(edge.clock.behind, false);
    assert.equal(edge.clock.behindSeconds, 600);
    assert.equal(edge.feeds[0]!.ageSeconds, DAY);
    assert.equal(assessFreshness({ hostNow: new Date(signed.getTime() - 601_000), signedTime: signed, active, rule: r }).clock.behind, true);

    // nothing signed yet, nothing active
    const none = assessFreshness({ hostNow: signed, signedTime: null, active: null, rule: r });
    assert.equal(none.clock.signedTime, null);
    assert.equal(none.clock.behind, false);
    assert.match(none.warnings.join(), /no vulnerability DB is active/);
  });

  test('refuse-scans refuses only while a feed is over its budget, naming each stale feed and its age', () => {
    const active = { version: '2027-05-10', activatedAt: null, feeds: [{ name: 'osv', snapshot: '2027-05-07T12:00:00Z' }, { name: 'ghsa', snapshot: '2027-05-04T00:00:00Z' }] };
    const at = (policy: string, maxAge: string) => assessFreshness({ hostNow: new Date('2027-05-10T12:00:00Z'), signedTime: null, active, rule: rule({ OUK_STALE_POLICY: policy, OUK_MAX_AGE: maxAge }) });
    assert.equal(staleRefusal(at('warn', 'osv:2d,ghsa:2d')), null);
    assert.equal(staleRefusal(at('refuse-scans', 'osv:4d,ghsa:7d')), null);
    const e = staleRefusal(at('refuse-scans', 'osv:2d,ghsa:36h'));
    assert.ok(e);
    assert.equal(e.code, 'DB_STALE');
    assert.equal(e.exitCode, 100);
    assert.match(e.message, /^the active DB 2027-05-10 is older than its budgets allow: osv 3d 0h old \(budget 2d\), ghsa 6d 12h old \(budget 36h\); OUK_STALE_POLICY=refuse-scans refuses scans until a newer OUK kit is active/);
    assert.equal(formatBudget(36 * HOUR), '36h');
    assert.equal(formatBudget(14 * DAY), '14d');
    assert.equal(formatBudget(90 * 60), '90m');
  });
});

describe('the signed time in PostgreSQL', () => {
  const X = new Date('2027-05-10T12:00:00Z');
  const at = (hours: number): Date => new Date(X.getTime() + hours * 3_600_000);
  let fx: PipelineFixture;
  before(async () => {
    fx = await pipelineFixture('freshness-signed-time');
  });
  after(async () => {
    await fx?.close();
  });

  test('verify records a verified kit\'s created time; an older kit, a refused one and a raw UPDATE never take it back', async () => {
    assert.deepEqual(await readSignedTime(fx.pool), { newest: null, importId: null, version: null, recordedAt: null });

    const kit = await makeBundle(fx, 'a.tar.gz', { version: '2027-05-10', advisories: 5, created: X.toISOString() });
    const p = await putBundle(fx, kit.path, 'stella-ouk-2027-05-10.tar.gz');
    await registerImport(fx, p);
    await verify(p, stageContext(fx, { now: () => at(1) }));
    assert.deepEqual(await readSignedTime(fx.pool), { newest: X, importId: p.importId, version: '2027-05-10', recordedAt: at(1) });

    // an older kit (nothing is active, so no downgrade): verified, the signed time stays
    const older = await makeBundle(fx, 'b.tar.gz', { version: '2027-05-01', advisories: 5, created: at(-24 * 9).toISOString() });
    const q = await putBundle(fx, older.path, 'stella-ouk-2027-05-01.tar.gz');
    await registerImport(fx, q);
    await verify(q, stageContext(fx, { now: () => at(2) }));
    assert.equal((await readSignedTime(fx.pool)).importId, p.importId);
    assert.deepEqual((await readSignedTime(fx.pool)).newest, X);

    // a kit from the future is refused before it can push the signed time ahead
    const ahead = await makeBundle(fx, 'c.tar.gz', { version: '2027-05-12', advisories: 5, created: at(5).toISOString() });
    const r = await putBundle(fx, ahead.path, 'stella-ouk-2027-05-12.tar.gz');
    await registerImport(fx, r, { force: true });
    await assert.rejects(verify(r, stageContext(fx, { now: () => at(2) })), (e: unknown) => isOukError(e) && e.code === 'BUNDLE_FROM_FUTURE');
    assert.deepEqual((await readSignedTime(fx.pool)).newest, X);

    // the owner's monotonic update, and the table's own guard against any other
    assert.equal(await advanceSignedTime(fx.pool, at(-1), { importId: 'x', version: 'v' }, at(3)), false);
    assert.equal(await advanceSignedTime(fx.pool, at(6), { importId: 'later', version: '2027-05-11' }, at(7)), true);
    await fx.pool.query('UPDATE ouk_meta.signed_time SET newest = $1, import_id = $2', [at(-100), 'rewound']);
    await fx.pool.query('UPDATE ouk_meta.signed_time SET newest = NULL');
    assert.deepEqual(await readSignedTime(fx.pool), { newest: at(6), importId: 'later', version: '2027-05-11', recordedAt: at(7) });

    // the signed time counts with no DB active too
    const f = await readFreshness(fx.pool, rule(), at(-48));
    assert.equal(f.clock.signedTime, at(6).toISOString());
    assert.equal(f.clock.behind, true);
    assert.equal(f.activeDb, null);
  });
});

/** libfaketime, as Debian's `faketime` preloads it ($LIB is expanded by the dynamic loader). */
const LIBFAKETIME = '/usr/$LIB/faketime/libfaketime.so.1';

/** A child's environment with its clock starting at `at` (and ticking): its own clock, not this run's shared one. */
function atClock(env: NodeJS.ProcessEnv, at: Date): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, TZ: 'UTC', LD_PRELOAD: LIBFAKETIME, FAKETIME: `@${at.toISOString().slice(0, 19).replace('T', ' ')}` };
  delete out.FAKETIME_SHARED;
  return out;
}

/** The value of one sample line of a Prometheus text body; null when absent. */
function sample(body: string, series: string): number | null {
  for (const line of body.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return null;
}

interface ScanAnswer {
  dbVersion: string;
  feeds: FeedAge[];
  freshness: { policy: string; clock: { behind: boolean; behindSeconds: number; signedTime: string | null; ageFrom: string }; stale: string[]; warnings: string[] };
}

describe('a clock set back a week, feeds over and within their budgets: the real API and CLI', () => {
  /** "today": this test's clock when the kit was built */
  let T: Date;
  let weekEarlier: Date;
  let fx: PipelineFixture;
  let redis: TestRedisPrefix;
  let env: NodeJS.ProcessEnv;
  let sbomPath: string;
  const apis: Record<'warn' | 'refuse' | 'quiet', { port: number; proc: ServiceProcess | null }> = {
    warn: { port: 0, proc: null },
    refuse: { port: 0, proc: null },
    quiet: { port: 0, proc: null },
  };
  /** Within every budget: osv gets four days. */
  const QUIET = 'nvd:3d,osv:4d,ghsa:2d,kev:7d';
  const iso = (seconds: number): string => new Date(T.getTime() - seconds * 1000).toISOString();
  /** What a scan and status report for each feed while ages count from T (the clock a week behind). */
  const expectedFeeds = (): FeedAge[] => [
    { name: 'nvd', snapshot: iso(DAY), ageSeconds: DAY, budgetSeconds: 3 * DAY, stale: false },
    { name: 'osv', snapshot: iso(3 * DAY), ageSeconds: 3 * DAY, budgetSeconds: 2 * DAY, stale: true },
    { name: 'ghsa', snapshot: iso(HOUR), ageSeconds: HOUR, budgetSeconds: 2 * DAY, stale: false },
    { name: 'kev', snapshot: iso(2 * DAY), ageSeconds: 2 * DAY, budgetSeconds: 7 * DAY, stale: false },
  ];
  const logs = (): string => Object.values(apis).map((a) => a.proc?.log(3000) ?? '').join('\n');
  const url = (which: keyof typeof apis, p: string): string => `http://127.0.0.1:${apis[which].port}${p}`;
  const scan = (which: keyof typeof apis): Promise<Response> =>
    fetch(url(which, '/api/v1/scan'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: fs.readFileSync(sbomPath) });

  before(async () => {
    T = new Date(Math.floor(Date.now() / 1000) * 1000);
    weekEarlier = new Date(T.getTime() - 7 * DAY * 1000);
    fx = await pipelineFixture('freshness-e2e');
    redis = testRedisPrefix('freshness');
    const version = T.toISOString().slice(0, 10);
    const kit = await makeBundle(fx, 'today.tar.gz', {
      version,
      advisories: 20,
      created: T.toISOString(),
      expires: new Date(T.getTime() + 100 * DAY * 1000).toISOString(),
      feeds: [
        { name: 'nvd', snapshot: iso(DAY), records: 20, skipped: 0 },
        { name: 'osv', snapshot: iso(3 * DAY), records: 20, skipped: 0 },
        { name: 'ghsa', snapshot: iso(HOUR), records: 20, skipped: 0 },
        { name: 'kev', snapshot: iso(2 * DAY), records: 3, skipped: 0 },
      ],
    });
    const p = await putBundle(fx, kit.path, `stella-ouk-${version}.tar.gz`);
    await registerImport(fx, p);
    await runStages(p, stageContext(fx, { now: () => new Date(T.getTime() + 1000) }));
    assert.deepEqual((await readSignedTime(fx.pool)).newest, T);

    sbomPath = path.join(fx.dir, 'bom.json');
    fs.writeFileSync(sbomPath, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', 'bom-ref': 'lodash', name: 'lodash', purl: 'pkg:npm/lodash@4.17.10' }] }));
    env = fixtureEnv(fx, redis, {
      OUK_TRUSTED_KEYS: fx.publicKey,
      OUK_WEBHOOK_TOKEN: 'freshness-webhook-token',
      STELLA_API_HOST: '127.0.0.1',
      STELLA_QUOTA_PREFIX: `${redis.prefix}-quota`,
      QUOTA_ANON: '100000',
      OUK_RECONCILE_SECONDS: '3600',
      LOG_LEVEL: 'warn',
    });
    for (const a of Object.values(apis)) a.port = await freePort();
    const logDir = (name: string): string => {
      const d = path.join(fx.dir, `api-${name}`);
      fs.mkdirSync(d, { recursive: true });
      return d;
    };
    apis.warn.proc = startService('api', atClock({ ...env, STELLA_API_PORT: String(apis.warn.port), OUK_STALE_POLICY: 'warn' }, weekEarlier), logDir('warn'));
    apis.refuse.proc = startService('api', atClock({ ...env, STELLA_API_PORT: String(apis.refuse.port), OUK_STALE_POLICY: 'refuse-scans' }, weekEarlier), logDir('refuse'));
    apis.quiet.proc = startService('api', { ...env, STELLA_API_PORT: String(apis.quiet.port), OUK_STALE_POLICY: 'refuse-scans', OUK_MAX_AGE: QUIET }, logDir('quiet'));
    for (const which of Object.keys(apis) as Array<keyof typeof apis>) {
      await waitFor(`the ${which} API to answer`, () => fetch(url(which, '/healthz')).then((r) => r.ok, () => false), 120_000, 200).catch((e: Error) => {
        throw new Error(`${e.message}\n${logs()}`);
      });
    }
  });
  after(async () => {
    for (const a of Object.values(apis)) await a.proc?.stop();
    await redis?.cleanup();
    await fx?.close();
  });

  test('`stella ouk status` a week behind: the clock BEHIND, every age from the signed time, osv over its budget; on the right clock, from the host clock', async () => {
    const json = await runStella(['ouk', 'status', '--json'], { cwd: fx.dir, env: atClock(env, weekEarlier) });
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as {
      active: { feeds: Array<FeedAge & { records: number }>; stale: boolean; ageSeconds: number };
      freshness: { clock: { behind: boolean; behindSeconds: number; signedTime: string; ageFrom: string; hostTime: string }; stale: string[]; policy: string; budgetsFrom: string };
      warnings: string[];
    };
    assert.equal(s.freshness.clock.behind, true);
    assert.ok(s.freshness.clock.behindSeconds > 7 * DAY - 300 && s.freshness.clock.behindSeconds <= 7 * DAY, String(s.freshness.clock.behindSeconds));
    assert.ok(s.freshness.clock.hostTime < T.toISOString());
    assert.equal(s.freshness.clock.signedTime, T.toISOString());
    assert.equal(s.freshness.clock.ageFrom, T.toISOString());
    assert.deepEqual(s.active.feeds.map(({ records: _r, skipped: _s, ...f }: FeedAge & { records: number; skipped?: number }) => f), expectedFeeds());
    assert.equal(s.active.feeds[3]!.records, 3);
    assert.equal(s.active.stale, true);
    assert.deepEqual(s.freshness.stale, ['osv']);
    assert.equal(s.freshness.budgetsFrom, 'default');
    assert.equal(s.warnings.length, 2);
    assert.match(s.warnings[0]!, /^this host's clock \(.*\) is (6d 23h|7d 0h) behind the newest signed time this site has seen/);
    assert.match(s.warnings[1]!, /^feed osv is 3d 0h old/);

    const human = await runStella(['ouk', 'status'], { cwd: fx.dir, env: atClock(env, weekEarlier) });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`Clock {7}host \\S+, newest signed time ${T.toISOString().replace(/\./g, '\\.')}: the host clock is BEHIND by (6d 23h|7d 0h), ages are counted from the signed time`));
    assert.match(human.stdout, /feeds: nvd 20 \(snapshot \S+, 1d 0h old, budget 3d\); osv 20 \(snapshot \S+, 3d 0h old, STALE: over its 2d budget\); ghsa 20 \(snapshot \S+, 1h 0m old, budget 2d\); kev 3 \(snapshot \S+, 2d 0h old, budget 7d\)/);
    assert.match(human.stdout, /Freshness {3}budgets nvd:3d,osv:2d,ghsa:2d,kev:7d,epss:7d \(default; OUK_MAX_AGE sets them\), OUK_STALE_POLICY=warn, stale: osv/);
    assert.match(human.stdout, /WARNING {5}this host's clock/);
    assert.match(human.stdout, /WARNING {5}feed osv is 3d 0h old/);

    // on this test's own clock: not behind, ages from the host clock (at least as old as from T)
    const right = await runStella(['ouk', 'status', '--json'], { cwd: fx.dir, env: { ...env, OUK_MAX_AGE: QUIET } });
    assert.equal(right.code, 0, right.stderr);
    const r = JSON.parse(right.stdout) as typeof s;
    assert.equal(r.freshness.clock.behind, false);
    assert.equal(r.freshness.clock.behindSeconds, 0);
    assert.equal(r.freshness.clock.ageFrom, r.freshness.clock.hostTime);
    assert.ok(r.active.feeds[1]!.ageSeconds! >= 3 * DAY);
    assert.deepEqual(r.freshness.stale, []);
    assert.deepEqual(r.warnings, []);
    assert.doesNotMatch((await runStella(['ouk', 'status'], { cwd: fx.dir, env: { ...env, OUK_MAX_AGE: QUIET } })).stdout, /WARNING|BEHIND|STALE:|stale:/);
  });

  test('the API a week behind, OUK_STALE_POLICY=warn: /readyz carries both warnings (freshness is never the reason it is not ready), /metrics has the ages and the clock, a scan answers with its feeds and the banner', async () => {
    const health = await fetch(url('warn', '/healthz'));
    assert.equal(health.status, 200);
    const ready = await fetch(url('warn', '/readyz'));
    const body = (await ready.json()) as {
      status: string;
      reasons: string[];
      warnings: string[];
      checks: { activeDb: { ok: boolean }; freshness: { ok: boolean; clock: { behind: boolean; signedTime: string; ageFrom: string }; feeds: FeedAge[]; stale: string[] } };
    };
    // A clock a week off also makes the object store refuse this host's signed requests (S3's
    // RequestTimeTooSkewed; s3rver does the same): /readyz may be 503 for that, never for freshness.
    assert.ok(ready.status === 200 || body.reasons.every((r) => r.startsWith('store: ')), JSON.stringify(body));
    assert.equal(body.checks.activeDb.ok, true);
    assert.equal(body.checks.freshness.ok, true);
    assert.equal(body.checks.freshness.clock.behind, true);
    assert.equal(body.checks.freshness.clock.ageFrom, T.toISOString());
    assert.deepEqual(body.checks.freshness.feeds, expectedFeeds());
    assert.equal(body.warnings.length, 2);
    assert.match(body.warnings[0]!, /this host's clock .* behind the newest signed time this site has seen/);
    assert.match(body.warnings[1]!, /^feed osv is 3d 0h old .*over its budget of 2d \(OUK_MAX_AGE\)/);

    const metrics = await (await fetch(url('warn', '/metrics'))).text();
    const behind = sample(metrics, 'ouk_clock_behind_seconds') ?? 0;
    assert.ok(behind > 7 * DAY - 300 && behind <= 7 * DAY, `ouk_clock_behind_seconds ${behind}`);
    assert.equal(sample(metrics, 'ouk_signed_time_timestamp_seconds'), T.getTime() / 1000);
    assert.deepEqual(
      ['nvd', 'osv', 'ghsa', 'kev'].map((f) => [sample(metrics, `ouk_feed_age_seconds{feed="${f}"}`), sample(metrics, `ouk_feed_stale{feed="${f}"}`), sample(metrics, `ouk_feed_budget_seconds{feed="${f}"}`)]),
      [[DAY, 0, 3 * DAY], [3 * DAY, 1, 2 * DAY], [HOUR, 0, 2 * DAY], [2 * DAY, 0, 7 * DAY]],
    );
    assert.equal(sample(metrics, 'ouk_active_db_stale'), 1);

    const res = await scan('warn');
    const answer = (await res.json()) as ScanAnswer;
    assert.equal(res.status, 200, JSON.stringify(answer));
    assert.deepEqual(answer.feeds, expectedFeeds());
    assert.equal(answer.freshness.policy, 'warn');
    assert.equal(answer.freshness.clock.behind, true);
    assert.equal(answer.freshness.clock.signedTime, T.toISOString());
    assert.deepEqual(answer.freshness.stale, ['osv']);
    assert.equal(answer.freshness.warnings.length, 2);
    assert.match(answer.freshness.warnings.join('\n'), /behind the newest signed time[\s\S]*feed osv is 3d 0h old/);
  });

  test('OUK_STALE_POLICY=refuse-scans: the scan API answers 503 DB_STALE naming osv and its age; stale feeds are no reason /readyz gives', async () => {
    const res = await scan('refuse');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, 'DB_STALE');
    assert.match(body.error.message, /older than its budgets allow: osv 3d 0h old \(budget 2d\) \(ages counted from the newest signed time \S+: this host's clock is (6d 23h|7d 0h) behind it\); OUK_STALE_POLICY=refuse-scans refuses scans until a newer OUK kit is active/);
    assert.doesNotMatch(body.error.message, /nvd|ghsa|kev/, 'only the stale feed is named');
    const ready = (await (await fetch(url('refuse', '/readyz'))).json()) as { reasons: string[]; checks: { activeDb: { ok: boolean } } };
    assert.equal(ready.checks.activeDb.ok, true);
    assert.ok(ready.reasons.every((r) => r.startsWith('store: ')), 'stale feeds are no reason to leave rotation');
  });

  test('within every budget, on the right clock: the scan API (refuse-scans) answers with no warning, the metrics say nothing is stale', async () => {
    const res = await scan('quiet');
    const answer = (await res.json()) as ScanAnswer;
    assert.equal(res.status, 200, JSON.stringify(answer));
    assert.equal(answer.freshness.clock.behind, false);
    assert.deepEqual(answer.freshness.stale, []);
    assert.deepEqual(answer.freshness.warnings, []);
    assert.deepEqual(answer.feeds.map((f) => [f.name, f.stale, f.budgetSeconds]), [['nvd', false, 3 * DAY], ['osv', false, 4 * DAY], ['ghsa', false, 2 * DAY], ['kev', false, 7 * DAY]]);
    assert.ok(answer.feeds.every((f) => f.ageSeconds !== null && f.ageSeconds >= Math.round((T.getTime() - Date.parse(f.snapshot!)) / 1000)));
    const readyRes = await fetch(url('quiet', '/readyz'));
    const ready = (await readyRes.json()) as { warnings: string[] };
    assert.equal(readyRes.status, 200, JSON.stringify(ready));
    assert.deepEqual(ready.warnings, []);
    const metrics = await (await fetch(url('quiet', '/metrics'))).text();
    assert.equal(sample(metrics, 'ouk_clock_behind_seconds'), 0);
    assert.equal(sample(metrics, 'ouk_active_db_stale'), 0);
    assert.deepEqual(['nvd', 'osv', 'ghsa', 'kev'].map((f) => sample(metrics, `ouk_feed_stale{feed="${f}"}`)), [0, 0, 0, 0]);
  });

  test('`stella scan` a week behind: each feed\'s age in the header and in --json, the banners; refuse-scans exits 100 DB_STALE; within budget it is quiet', async () => {
    const table = await runStella(['scan', sbomPath], { cwd: fx.dir, env: atClock(env, weekEarlier) });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Vulnerability DB \S+ \(activated [^)]+\)\nFeed ages: nvd 1d 0h old \(budget 3d\), osv 3d 0h old \(STALE: over its 2d budget\), ghsa 1h 0m old \(budget 2d\), kev 2d 0h old \(budget 7d\) \(counted from \S+, the newest signed time\)\nWARNING: this host's clock .* behind the newest signed time this site has seen.*\nWARNING: feed osv is 3d 0h old/);
    assert.match(table.stderr, /warning: this host's clock .* behind the newest signed time/);
    assert.match(table.stderr, /warning: feed osv is 3d 0h old/);

    const json = await runStella(['scan', sbomPath, '--json'], { cwd: fx.dir, env: atClock(env, weekEarlier) });
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout) as ScanAnswer;
    assert.deepEqual(answer.feeds, expectedFeeds());
    assert.equal(answer.freshness.clock.behind, true);
    assert.deepEqual(answer.freshness.stale, ['osv']);

    const refused = await runStella(['scan', sbomPath], { cwd: fx.dir, env: atClock({ ...env, OUK_STALE_POLICY: 'refuse-scans' }, weekEarlier) });
    assert.equal(refused.code, EXIT_CODES.DB_STALE, refused.stderr);
    assert.equal(refused.code, 100);
    assert.match(refused.stderr, /^error\[DB_STALE\]: the active DB \S+ is older than its budgets allow: osv 3d 0h old \(budget 2d\)/m);
    assert.equal(refused.stdout, '');

    const quiet = await runStella(['scan', sbomPath], { cwd: fx.dir, env: { ...env, OUK_STALE_POLICY: 'refuse-scans', OUK_MAX_AGE: QUIET } });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /^Feed ages: nvd \S+ \S+ old \(budget 3d\), osv 3d \S+ old \(budget 4d\), ghsa \S+ \S+ old \(budget 2d\), kev \S+ \S+ old \(budget 7d\)$/m);
    assert.doesNotMatch(quiet.stdout, /WARNING|STALE|signed time/);
    assert.doesNotMatch(quiet.stderr, /warning/);
  });

  test('a bad OUK_MAX_AGE stops the API and the CLI at start, naming the variable', async () => {
    const bad = await runStella(['scan', sbomPath], { cwd: fx.dir, env: { ...env, OUK_MAX_AGE: 'nvd:3d,nvdd:2d' } });
    assert.equal(bad.code, EXIT_CODES.USAGE);
    assert.equal(bad.stderr, 'error[USAGE]: OUK_MAX_AGE=nvd:3d,nvdd:2d: unknown feed "nvdd": the feeds are nvd, osv, ghsa, csaf, kev, epss\n');
    const badDuration = await runStella(['ouk', 'status'], { cwd: fx.dir, env: { ...env, OUK_MAX_AGE: 'osv:2 days' } });
    assert.equal(badDuration.code, EXIT_CODES.USAGE);
    assert.match(badDuration.stderr, /^error\[USAGE\]: OUK_MAX_AGE=osv:2 days: feed osv: "2 days" is not a duration: give a number and a unit \(w, d, h, m, s\)/);

    const dir = path.join(fx.dir, 'bad-api');
    fs.mkdirSync(dir, { recursive: true });
    const api = startService('api', { ...env, STELLA_API_PORT: String(await freePort()), OUK_MAX_AGE: 'nvd:3d,foo:1d' }, dir);
    const code = await new Promise<number | null>((resolve) => {
      if (api.child.exitCode !== null) resolve(api.child.exitCode);
      else api.child.once('exit', (c) => resolve(c));
    });
    assert.notEqual(code, 0);
    assert.match(api.log(), /OUK_MAX_AGE=nvd:3d,foo:1d: unknown feed "foo": the feeds are nvd, osv, ghsa, csaf, kev, epss/);
  });
});
