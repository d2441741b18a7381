/**
 * The import record (ouk_meta.imports): one row per bundle object, the source
 * of truth for what a stage already did. This folder is the only code that
 * reads or writes that table — one file per kind of operation, as
 * graphile-worker keeps its jobs table's statements in `src/sql/`:
 *
 *   states.ts       the states, their groups (unfinished, finished, replaced) and the machine
 *   record.ts       the record's shape and its row mapping
 *   get.ts          one record, by id prefix, the newest ones
 *   create.ts       a bundle object's record (once), its flags
 *   progress.ts     the flow queued, the signed manifest's facts
 *   stages.ts       a stage begins, is done, fails, is lost, is retried
 *   transitions.ts  requeue, activate, supersede, roll back, re-activate
 *   find.ts         the reconciler's, mirror's, gc's and delta policy's questions
 *   quarantine.ts   a refused kit quarantined, released, removed; the quarantine's questions
 */
export * from './states.ts';
export * from './record.ts';
export * from './get.ts';
export * from './create.ts';
export * from './progress.ts';
export * from './stages.ts';
export * from './transitions.ts';
export * from './find.ts';
export * from './quarantine.ts';
