/**
 * The import record's states, the groups callers test against, and the state
 * machine its transitions follow (the named transitions in this folder check
 * it; no other code writes `ouk_meta.imports.state`).
 *
 *   queued ─► verifying ─► unpacking ─► loading ─► activating ─► active ─► superseded
 *      ▲          │ any unfinished state ─► failed ─► (retry) queued      └─► rolled-back
 *      └──────────┴── a retry, a re-activation of a superseded or rolled-back full kit
 *   failed ─► quarantined ─► removed;  quarantined ─► (release) failed ─► (retry) queued
 */
import type { StageName } from '../../lib/stages.ts';

export type ImportState =
  | 'queued'
  | 'verifying'
  | 'unpacking'
  | 'loading'
  | 'activating'
  | 'active'
  | 'superseded'
  | 'failed'
  | 'rolled-back'
  // refused for integrity or policy, its kit moved under quarantine/ (lib/quarantine.ts): never retried
  | 'quarantined'
  // a quarantined kit deleted by `stella ouk quarantine rm`
  | 'removed';

/** Imports under way: a stage runs or will run without anyone's help. */
export const UNFINISHED_STATES = ['queued', 'verifying', 'unpacking', 'loading', 'activating'] as const satisfies readonly ImportState[];

/**
 * Imports that need nothing more, and that no stage job moves out of (a stray or
 * replayed job changes nothing): the active DB, the DBs it replaced, and kits
 * quarantined or removed (failed ones wait for an operator's retry).
 */
export const FINISHED_STATES = ['active', 'superseded', 'rolled-back', 'quarantined', 'removed'] as const satisfies readonly ImportState[];

/** Imports whose DB was active once and no longer is (a re-activation brings one back). */
export const REPLACED_STATES = ['superseded', 'rolled-back'] as const satisfies readonly ImportState[];

export type UnfinishedState = (typeof UNFINISHED_STATES)[number];
export type FinishedState = (typeof FINISHED_STATES)[number];

export function isUnfinished(state: string): state is UnfinishedState {
  return (UNFINISHED_STATES as readonly string[]).includes(state);
}

export function isFinished(state: string): state is FinishedState {
  return (FINISHED_STATES as readonly string[]).includes(state);
}

export function isReplaced(state: string): state is (typeof REPLACED_STATES)[number] {
  return (REPLACED_STATES as readonly string[]).includes(state);
}

/** The import state a running stage puts the record in. */
export const RUNNING_STATE: Record<StageName, ImportState> = {
  verify: 'verifying',
  unpack: 'unpacking',
  load: 'loading',
  activate: 'activating',
  // images runs after activation: the import is (and stays) active.
  images: 'active',
};

const NOT_FINISHED: readonly ImportState[] = [...UNFINISHED_STATES, 'failed'];

/** For each state an import can move to, the states it may come from (what the transitions' SQL checks). */
export const MOVES_TO: Record<ImportState, readonly ImportState[]> = {
  // a retry (from anything not finished), a re-activation (from a replaced full kit)
  queued: [...NOT_FINISHED, ...REPLACED_STATES],
  verifying: NOT_FINISHED,
  unpacking: NOT_FINISHED,
  loading: NOT_FINISHED,
  activating: NOT_FINISHED,
  // a stage's final failure; a quarantined kit released (verified again by its retry)
  failed: [...NOT_FINISHED, 'quarantined'],
  // the activate stage's commit; a rollback brings the previous DB back
  active: [...NOT_FINISHED, ...REPLACED_STATES],
  superseded: ['active'],
  'rolled-back': ['active'],
  // refused for integrity or policy: its kit moved under quarantine/ (functions/quarantine/quarantine.ts)
  quarantined: ['failed'],
  // `stella ouk quarantine rm` (again: a no-op)
  removed: ['quarantined', 'removed'],
};
