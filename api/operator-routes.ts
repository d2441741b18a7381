/**
 * What an operator does to imports over HTTP, for a signed-in person or a
 * personal token (api/access.ts), each on the audit trail with the person's
 * `sub` and how they signed in:
 *
 *   POST /api/v1/imports/:id/retry   {"reason"?}  retry a failed import from its failed stage   role operator
 *   POST /api/v1/rollback            {"reason"?}  re-activate the previous DB                     role operator
 *
 * With a session cookie each needs the session's CSRF token (X-CSRF-Token).
 * Answers: 202 {importId, stage, mode} / 200 {from, to}; 400 USAGE or
 * REASON_REQUIRED, 401, 403 ROLE_REQUIRED / CSRF_REJECTED, 404
 * IMPORT_NOT_FOUND, 409 NOTHING_TO_RETRY / NO_PREVIOUS_DB / NOTHING_ACTIVE,
 * 503 DATABASE_UNAVAILABLE / QUEUE_UNAVAILABLE. Quarantine release, gc with
 * grace 0 and trust rotation stay with the CLI (`stella ouk …`, `stella
 * trust …`), audited there with the OS user.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { PipelineSettings } from '../lib/config.ts';
import { type ErrorCode, isOukError, OukError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pool } from '../infra/db.ts';
import type { AuditAction } from '../infra/audit.ts';
import { rollback } from '../functions/rollback.ts';
import type { PipelineQueues } from '../queue/queues.ts';
import { enqueueRescans } from '../queue/rescan.ts';
import { retryImport } from '../queue/retry.ts';
import type { Access } from './access.ts';

export interface OperatorRoutesOptions {
  access: Access;
  pool: Pool;
  queues: PipelineQueues;
  settings: PipelineSettings;
  logger: Logger;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  REASON_REQUIRED: 400,
  IMPORT_NOT_FOUND: 404,
  NOTHING_TO_RETRY: 409,
  NO_PREVIOUS_DB: 409,
  NOTHING_ACTIVE: 409,
  DATABASE_UNAVAILABLE: 503,
  QUEUE_UNAVAILABLE: 503,
};

const MAX_REASON = 1000;

function reasonOf(body: unknown): string | null {
  if (body === undefined || body === null) return null;
  const reason = typeof body === 'object' ? (body as { reason?: unknown }).reason : undefined;
  if (reason === undefined || reason === null) return null;
  // eslint-disable-next-line no-control-regex
  if (typeof reason !== 'string' || reason.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(reason)) {
    throw new OukError('REASON_REQUIRED', `"reason" must be one line of at most ${MAX_REASON} characters`);
  }
  return reason.trim() || null;
}

export const operatorRoutes: FastifyPluginAsync<OperatorRoutesOptions> = async (app: FastifyInstance, opts: OperatorRoutesOptions) => {
  const { access, logger } = opts;
  const flow = { pool: opts.pool, queues: opts.queues, settings: opts.settings, logger };

  /** Runs the action and writes its audit row (ok, or the code it ended with); answers with the result or the error. */
  async function audited<T>(request: FastifyRequest, reply: FastifyReply, action: AuditAction, target: string | null, fn: () => Promise<T>, targetOf?: (r: T) => string): Promise<FastifyReply> {
    let reason: string | null = null;
    try {
      reason = reasonOf(request.body);
      const r = await fn();
      await access.audit(request, action, targetOf ? targetOf(r) : target, 'ok', reason);
      logger.info({ sub: request.person?.sub, via: request.person?.via, action, target }, 'operator action');
      return reply.code(action === 'retry' ? 202 : 200).send(r);
    } catch (e) {
      const code: ErrorCode = isOukError(e) ? e.code : 'INTERNAL';
      await access.audit(request, action, target, code, reason).catch((err: unknown) => logger.error({ err, action, target }, 'could not write the audit row of a failed operator action'));
      const status = STATUS[code] ?? (isOukError(e) && e.retryable ? 503 : isOukError(e) ? 409 : 500);
      if (status === 500) logger.error({ err: e, action, target }, 'operator action failed');
      return reply.code(status).send({ error: { code, message: isOukError(e) ? e.message : 'the action failed unexpectedly: see the API log' } });
    }
  }

  await app.register(async (scoped) => {
    scoped.addHook('onRequest', access.guard('operator'));
    scoped.post<{ Params: { id: string } }>('/api/v1/imports/:id/retry', { bodyLimit: 16 * 1024 }, async (request, reply) => {
      const id = request.params.id;
      if (!/^[0-9a-f]{8,64}$/i.test(id)) {
        return reply.code(404).send({ error: { code: 'IMPORT_NOT_FOUND', message: 'no such import: give the full import id `stella ouk status` shows' } });
      }
      return audited(request, reply, 'retry', id, () => retryImport(flow, id));
    });
    scoped.post('/api/v1/rollback', { bodyLimit: 16 * 1024 }, async (request, reply) =>
      audited(
        request,
        reply,
        'rollback',
        null,
        async () => {
          const r = await rollback(opts.pool, logger, access.now());
          const rescans = await enqueueRescans({ pool: opts.pool, queue: opts.queues.rescan, settings: opts.settings, logger }).catch((e: unknown) => {
            logger.warn({ err: e }, 'stored SBOMs not queued for re-scan after the rollback; the reconciler plans them');
            return null;
          });
          return { ...r, rescans };
        },
        (r) => `${r.from.version ?? r.from.importId} -> ${r.to.version}`,
      ),
    );
  });
};
