-- Issue 22, items 4 and 6: the audit trail and quarantine.
--
-- ouk_meta.audit: every override and every operator action that changes what
-- the site trusts or holds (an import with --allow-downgrade or --force,
-- rollback, retry, quarantine release and rm, gc with grace 0, the dashboard's
-- retry): one row each, appended by infra/audit.ts (its only owner) and never
-- changed. The trigger refuses UPDATE, DELETE and TRUNCATE for every role,
-- the table's owner included; PUBLIC has no right to change it either.
CREATE TABLE IF NOT EXISTS ouk_meta.audit (
  seq      bigserial PRIMARY KEY,
  at       timestamptz NOT NULL,     -- the acting process's (injected) clock
  actor    text NOT NULL,            -- the token's `sub` (API, dashboard), the OS user (CLI)
  action   text NOT NULL,            -- import.allow-downgrade | import.force | rollback | retry | quarantine.release | quarantine.rm | gc.grace-0 | dashboard.retry | trust.pin | trust.advance (the verify stage, actor system)
  target   text,                     -- an import id, a version, a quarantined object
  reason   text,                     -- the operator's --reason (required for overrides and rm)
  outcome  text NOT NULL             -- ok, or the error code the action ended with
);
CREATE INDEX IF NOT EXISTS audit_at_idx ON ouk_meta.audit (at);

CREATE OR REPLACE FUNCTION ouk_meta.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ouk_meta.audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_append_only ON ouk_meta.audit;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON ouk_meta.audit
  FOR EACH ROW EXECUTE FUNCTION ouk_meta.audit_append_only();
DROP TRIGGER IF EXISTS audit_no_truncate ON ouk_meta.audit;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON ouk_meta.audit
  FOR EACH STATEMENT EXECUTE FUNCTION ouk_meta.audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON ouk_meta.audit FROM PUBLIC;

-- Quarantine: an import refused for integrity or policy (lib/quarantine.ts)
-- has its kit moved to quarantine/<date>/<name> in the bucket. The record
-- says where (quarantine_key, chosen before the first copy so a replay uses
-- the same place), when, and for what code; state 'quarantined' (never
-- retried), then 'removed' after `stella ouk quarantine rm`. quarantined_at
-- and quarantine_code stay after a release: ouk_quarantined_total counts them.
ALTER TABLE ouk_meta.imports ADD COLUMN IF NOT EXISTS quarantine_key text;
ALTER TABLE ouk_meta.imports ADD COLUMN IF NOT EXISTS quarantined_at timestamptz;
ALTER TABLE ouk_meta.imports ADD COLUMN IF NOT EXISTS quarantine_code text;
CREATE INDEX IF NOT EXISTS imports_quarantined_idx ON ouk_meta.imports (quarantined_at) WHERE quarantined_at IS NOT NULL;
