-- Import pipeline bookkeeping beyond 001: operator flags an import was requested
-- with, whether its BullMQ flow has been added, and the previous DB kept for
-- rollback.
ALTER TABLE ouk_meta.imports
  ADD COLUMN IF NOT EXISTS allow_downgrade boolean NOT NULL DEFAULT false,  -- stella ouk import --allow-downgrade
  ADD COLUMN IF NOT EXISTS force           boolean NOT NULL DEFAULT false,  -- stella ouk import --force (expired bundle)
  ADD COLUMN IF NOT EXISTS flow_added_at   timestamptz,                     -- set once the verify→…→activate flow exists
  ADD COLUMN IF NOT EXISTS activated_at    timestamptz,
  ADD COLUMN IF NOT EXISTS counts          jsonb;                           -- rows per table after load

CREATE INDEX IF NOT EXISTS imports_object_idx ON ouk_meta.imports (bucket, object_key);
CREATE INDEX IF NOT EXISTS imports_state_idx ON ouk_meta.imports (state);

-- The import that was active before the current one: what `stella ouk rollback`
-- re-activates, and the one DB schema cleanup keeps besides the active one.
ALTER TABLE ouk_meta.state
  ADD COLUMN IF NOT EXISTS previous_import text;
