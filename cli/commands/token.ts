/**
 * `stella token issue --key PRIVATE --sub NAME [--tier N] [--ttl 30d]`: signs a
 * scan token (the operator's private key; encrypted keys with
 * STELLA_KEY_PASSWORD) and prints it on stdout.
 * `stella token inspect [TOKEN]`: prints its header and claims, and verifies
 * it when STELLA_JWT_PUBLIC_KEY is set (TOKEN defaults to STELLA_JWT).
 * `stella token desk [--check]`: the free-token e-mail desk (publisher side,
 * publisher/token-desk/): listens for SMTP and answers a mail to
 * TOKEN_DESK_ADDRESS with a signed token, until SIGTERM/SIGINT; `--check`
 * runs its start-up checks (key, database, relay) and exits.
 * See lib/tokens.ts for algorithms and claims.
 */
import type { Command } from 'commander';
import { tokenDeskSettings, type Config } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { decodeToken, issueToken, loadPublicTokenKey, verifyToken } from '../../lib/tokens.ts';
import { terminalLines } from '../../lib/terminal-text.ts';
import type { CliContext } from '../context.ts';
import { readPasswordLine, requestPersonalToken } from '../token/request.ts';

export interface IssueCliOptions {
  key: string;
  sub: string;
  tier?: string;
  role?: string;
  ttl: string;
  issuer?: string;
}

export async function runIssue(opts: IssueCliOptions, config: Config): Promise<{ token: string; summary: string }> {
  let tier: number | undefined;
  if (opts.tier !== undefined) {
    tier = Number(opts.tier);
    if (!Number.isInteger(tier)) throw new OukError('USAGE', `--tier ${opts.tier}: give a whole number of scans a day`);
  }
  const { token, claims, alg } = await issueToken({
    privateKey: opts.key,
    passphrase: config.keyPassword,
    sub: opts.sub,
    tier,
    role: opts.role,
    ttl: opts.ttl,
    issuer: opts.issuer ?? config.jwtIssuer,
    policy: config.cryptoPolicy,
  });
  const summary = `issued ${alg} token for ${claims.sub} (jti ${claims.jti}, issuer ${claims.iss}, ${claims.tier !== undefined ? `tier ${claims.tier} scans/day` : `default allowance QUOTA_TOKEN`}${claims.role ? `, role ${claims.role}` : ''}), expires ${new Date(claims.exp * 1000).toISOString()}`;
  return { token, summary };
}

const iso = (v: unknown): string | null => (typeof v === 'number' ? new Date(v * 1000).toISOString() : null);

export async function runInspect(token: string | undefined, config: Config): Promise<{ output: string; error: OukError | null }> {
  const t = token ?? config.jwt;
  if (!t) throw new OukError('USAGE', 'give a TOKEN, or set STELLA_JWT');
  const { header, claims } = decodeToken(t);
  const lines = [`header: ${JSON.stringify(header)}`, `claims: ${JSON.stringify(claims)}`];
  for (const k of ['iat', 'exp', 'nbf'] as const) if (iso(claims[k])) lines.push(`${k}: ${iso(claims[k])}`);
  let error: OukError | null = null;
  if (!config.jwtPublicKey) {
    lines.push('signature: NOT verified (STELLA_JWT_PUBLIC_KEY is not set)');
  } else {
    try {
      const v = await verifyToken(t, loadPublicTokenKey(config.jwtPublicKey), { issuer: config.jwtIssuer, maxDays: config.jwtMaxDays, policy: config.cryptoPolicy });
      lines.push(`signature: verified (${v.alg}, issuer ${v.claims.iss}); quota id ${v.id}${v.claims.tier !== undefined ? `, tier ${v.claims.tier} scans/day` : ''}`);
    } catch (e) {
      if (!(e instanceof OukError)) throw e;
      lines.push(`signature: REFUSED — ${e.message}`);
      error = e;
    }
  }
  return { output: terminalLines(lines), error }; // the token is outside input: its claims printed escaped
}

/**
 * Runs the desk until `untilStopped()` resolves (the CLI: SIGTERM or
 * SIGINT); with `check`, only its start-up checks. `say` gets the operator's lines.
 */
export async function runDesk(cli: CliContext, opts: { check?: boolean }, say: (line: string) => void, untilStopped: () => Promise<unknown>): Promise<void> {
  const { config } = cli;
  const { describePeriod, prepareTokenDesk, refuseAirgap, startTokenDesk } = await import('../../publisher/token-desk/index.ts');
  // refused before any desk setting is read: nothing of the desk runs on an air-gapped host
  refuseAirgap(config.airgap);
  const deps = { airgap: config.airgap, keyPassword: config.keyPassword, issuer: config.jwtIssuer, logger: createLogger('token-desk', { level: config.logLevel ?? 'info' }) };
  // the desk's own settings are parsed here only: no other command needs them set
  const settings = tokenDeskSettings(cli.env);
  const pool = await cli.db({ migrate: true });
  if (opts.check) {
    const prepared = await prepareTokenDesk(settings, deps);
    prepared.relay.close();
    say(`token desk: configuration, key, database and relay ${settings.relay.host}:${settings.relay.port} OK; would listen on ${settings.listenHost}:${settings.listenPort} for ${settings.address}`);
    return;
  }
  const desk = await startTokenDesk(settings, { ...deps, pool });
  say(`token desk listening on ${desk.host}:${desk.port} for ${settings.address}: tier ${settings.tier}, tokens valid ${describePeriod(settings.ttlSeconds)}, ${settings.perAddress} per address and ${settings.perDomain} per domain every ${describePeriod(settings.periodSeconds)}; replies through ${settings.relay.host}:${settings.relay.port}`);
  const signal = await untilStopped();
  say(`token desk stopping (${String(signal)})`);
  await desk.close();
}

export function registerToken(program: Command, cli: CliContext): void {
  const token = program.command('token').description('issue and inspect scan tokens (JWT, verified offline)');
  token
    .command('issue')
    .description('sign a scan token with the operator\'s private key and print it')
    .requiredOption('--key <private.pem>', 'private key (PKCS#8 PEM: ECDSA P-256, Ed25519 or RSA >= 2048)')
    .requiredOption('--sub <name>', 'who the token is for')
    .option('--tier <n>', 'daily scan allowance of this token (raises QUOTA_TOKEN)')
    .option('--role <role>', 'viewer (reads stored SBOMs over HTTP), operator (also changes them, opens the job dashboard) or admin')
    .option('--ttl <duration>', 'lifetime: 30d, 12h, 90m, 3600s', '30d')
    .option('--issuer <iss>', 'issuer claim (default STELLA_JWT_ISSUER or stella-ouk)')
    .action(async (opts: IssueCliOptions) => {
      const { token: t, summary } = await runIssue(opts, cli.config);
      process.stdout.write(`${t}\n`);
      process.stderr.write(`${summary}\n`);
    });
  token
    .command('request')
    .description('your own API token, through the API sign-in and your roles (password on stdin)')
    .requiredOption('--api <url>', "the API's URL, e.g. https://ouk.example.org")
    .requiredOption('--user <name>', 'your user name (the directory account)')
    .option('--role <role>', 'viewer, operator or admin: no higher than yours (default: your highest)')
    .option('--ttl <duration>', 'lifetime: 30d, 12h, 90m (at most OUK_PERSONAL_TOKEN_MAX_DAYS)', '30d')
    .action(async (opts: { api: string; user: string; role?: string; ttl: string }) => {
      const issued = await requestPersonalToken({ api: opts.api, user: opts.user, password: await readPasswordLine(), role: opts.role, ttl: opts.ttl });
      process.stdout.write(`${issued.token}\n`);
      process.stderr.write(terminalLines([`personal token for ${issued.sub}: role ${issued.role}, until ${issued.expiresAt} (jti ${issued.jti})`]));
    });
  token
    .command('inspect')
    .description('decode a token, and verify it when STELLA_JWT_PUBLIC_KEY is set')
    .argument('[token]', 'the token (default: STELLA_JWT)')
    .action(async (t: string | undefined) => {
      const { output, error } = await runInspect(t, cli.config);
      process.stdout.write(output);
      if (error) throw error;
    });
  token
    .command('desk')
    .description('the free-token e-mail desk: answers a mail to TOKEN_DESK_ADDRESS with a signed scan token, through the relay (connected side only; runs until SIGTERM/SIGINT)')
    .option('--check', 'check the configuration, the signing key, the database and the relay, then exit without listening', false)
    .action(async (opts: { check: boolean }) => {
      const untilStopped = (): Promise<string> =>
        new Promise<string>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
      await runDesk(cli, opts, (line) => process.stderr.write(`${line}\n`), untilStopped);
    });
}
