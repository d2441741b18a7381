/**
 * `stella auth test-ldap USER [--password-file FILE]`: signs USER in against
 * the directory as the API would (OUK_LDAP_*, OUK_CA_FILE, OUK_ROLE_MAP) and
 * prints what it found — the DN, the groups (and how nested ones were found),
 * the roles — and, unlike a sign-in, why it failed (unknown user, wrong
 * password, no role). The password comes from FILE or stdin (typed without
 * echo on a terminal) and is never printed. Exit 0 when USER could sign in,
 * LOGIN_FAILED (130) when not, DIRECTORY_* when the directory cannot say.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ldapSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import { terminalText } from '../../lib/terminal-text.ts';
import { LdapAuthenticator, MAX_PASSWORD_CHARS, type LdapDiagnosis, type LdapOutcome } from '../../identity/ldap/index.ts';
import type { CliContext } from '../context.ts';

const WHY: Record<Exclude<LdapOutcome, 'signed-in'>, string> = {
  'refused-input': 'the user name or the password is empty, too long or holds control characters',
  'unknown-user': 'no entry under OUK_LDAP_USER_BASE matches OUK_LDAP_USER_FILTER for this name',
  'ambiguous-user': 'more than one entry matches OUK_LDAP_USER_FILTER for this name: make the filter match one person',
  'wrong-password': 'the directory refused the password (wrong, expired, or the account is locked or disabled)',
  'no-role': 'none of these groups is mapped to a role in OUK_ROLE_MAP',
};

/** The password: one line from FILE or stdin, without its newline; bounded. */
async function readPassword(file: string | undefined): Promise<string> {
  if (file) return (await readFile(file, 'utf8')).slice(0, MAX_PASSWORD_CHARS + 2).replace(/\r?\n$/, '');
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write('password: ');
    stdin.setRawMode(true);
  }
  let text = '';
  try {
    for await (const chunk of stdin) {
      text += (chunk as Buffer).toString('utf8');
      if (stdin.isTTY && text.includes('\u0003')) throw new OukError('USAGE', 'interrupted');
      if (/[\r\n]/.test(text) || text.length > MAX_PASSWORD_CHARS + 2) break;
    }
  } finally {
    if (stdin.isTTY) {
      stdin.setRawMode(false);
      process.stderr.write('\n');
    }
    stdin.pause();
  }
  return text.split(/\r?\n|\r/)[0]!;
}

export function formatDiagnosis(url: string, d: LdapDiagnosis): string {
  const t = (s: string): string => terminalText(s);
  const lines = [`directory  ${t(url)}`, `user       ${t(d.username)}${d.dn ? ` = ${t(d.dn)}` : ''}`];
  if (d.displayName) lines.push(`name       ${t(d.displayName)}`);
  if (d.dn) {
    lines.push(`groups     ${d.groups.length} (${d.groupMethod ?? 'none'})`);
    for (const g of d.groups) lines.push(`           ${t(g)}`);
    lines.push(`roles      ${d.roles.length ? d.roles.join(', ') : '(none)'}`);
  }
  lines.push(`result     ${d.outcome === 'signed-in' ? 'can sign in' : `cannot sign in: ${WHY[d.outcome]}`}`);
  return lines.join('\n') + '\n';
}

export function registerAuthTestLdap(auth: Command, cli: CliContext): void {
  auth
    .command('test-ldap')
    .description('sign USER in against the directory (OUK_LDAP_URL) and print the DN, groups and roles found; the password from --password-file or stdin')
    .argument('<user>', 'the user name, as typed on the sign-in page')
    .option('--password-file <file>', 'read the password from FILE (first line) instead of stdin')
    .action(async (user: string, opts: { passwordFile?: string }) => {
      const settings = ldapSettings(cli.env);
      if (!settings) throw new OukError('DIRECTORY_NOT_CONFIGURED', 'OUK_LDAP_URL is not set: configure the directory (docs/operations.md, "Signing in") and try again');
      const authenticator = await LdapAuthenticator.create(settings);
      const password = await readPassword(opts.passwordFile);
      const d = await authenticator.diagnose(user, password);
      process.stdout.write(formatDiagnosis(settings.url, d));
      if (d.outcome !== 'signed-in') throw new OukError('LOGIN_FAILED', `${terminalText(user)} cannot sign in: ${WHY[d.outcome]}`);
    });
}
