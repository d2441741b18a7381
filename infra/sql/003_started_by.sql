-- Who created an import record first: the bucket notification (webhook), the
-- CLI (`stella ouk import`) or the reconciler (a bucket listing) — so the CLI
-- can say which of two racing paths started an import.
ALTER TABLE ouk_meta.imports
  ADD COLUMN IF NOT EXISTS started_by text;
