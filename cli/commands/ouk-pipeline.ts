/**
 * The import pipeline's commands: `stella ouk import`, `status`, `retry`, `rollback`, `gc`.
 */
import type { Command } from 'commander';
import { registerOukGc } from './ouk-gc.ts';
import { registerOukImport } from './ouk-import.ts';
import { registerOukRetry } from './ouk-retry.ts';
import { registerOukRollback } from './ouk-rollback.ts';
import { registerOukStatus } from './ouk-status.ts';

export function registerOukPipeline(ouk: Command): void {
  registerOukImport(ouk);
  registerOukStatus(ouk);
  registerOukRetry(ouk);
  registerOukRollback(ouk);
  registerOukGc(ouk);
}
