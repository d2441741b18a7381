/**
 * The CLI's side of the audit trail: who the actor is (the OS user), the
 * `--reason` an override requires, and one row per audited action with its
 * outcome (infra/audit.ts). The row is written whether the action succeeds or
 * fails (then with the error's code); the error is rethrown as it was.
 */
import os from 'node:os';
import { appendAudit, type AuditAction } from '../infra/audit.ts';
import { isOukError, OukError } from '../lib/errors.ts';
import { terminalLines } from '../lib/terminal-text.ts';
import type { CliContext } from './context.ts';

/** Longest reason kept: a sentence or two, not a file. */
export const MAX_REASON_CHARS = 1000;

/** The OS user running the CLI (the audit row's actor). */
export function cliActor(): string {
  try {
    return os.userInfo().username || `uid:${process.getuid?.() ?? '?'}`;
  } catch {
    return `uid:${process.getuid?.() ?? '?'}`;
  }
}

/**
 * The operator's reason, trimmed; REASON_REQUIRED when `required` and it is
 * missing or blank (`what` names the option that needs it), or when it is
 * longer than MAX_REASON_CHARS or carries control characters.
 */
export function reasonOf(reason: string | undefined, required: boolean, what: string): string | null {
  const text = reason?.trim() ?? '';
  if (!text) {
    if (required) throw new OukError('REASON_REQUIRED', `${what} needs --reason TEXT: say why, it goes on the audit trail (\`stella ouk audit\`)`);
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (text.length > MAX_REASON_CHARS || /[\u0000-\u001f\u007f]/.test(text)) {
    throw new OukError('REASON_REQUIRED', `--reason must be one line of at most ${MAX_REASON_CHARS} characters`);
  }
  return text;
}

/** Runs `fn` and appends its audit row (outcome ok, or the error's code); `target` may be refined by the result. */
export async function audited<T>(
  cli: CliContext,
  entry: { action: AuditAction; target: string | null; reason: string | null },
  fn: () => Promise<T>,
  targetOf?: (r: T) => string | null,
): Promise<T> {
  let target = entry.target;
  const write = async (outcome: string): Promise<void> => {
    const pool = await cli.db({ migrate: true });
    await appendAudit(pool, { at: new Date(), actor: cliActor(), action: entry.action, target, reason: entry.reason, outcome });
  };
  let r: T;
  try {
    r = await fn();
  } catch (e) {
    // The action's own error is what the operator sees; an audit row that could not be written is said too.
    await write(isOukError(e) ? e.code : 'INTERNAL').catch((auditErr: unknown) =>
      process.stderr.write(terminalLines([`warning: the audit row of this ${entry.action} could not be written: ${auditErr instanceof Error ? auditErr.message : String(auditErr)}`])),
    );
    throw e;
  }
  if (targetOf) target = targetOf(r) ?? target;
  // It happened: a row that cannot be written fails the command (DATABASE_UNAVAILABLE), the operator must know.
  await write('ok');
  return r;
}
