-- Stella OUK bookkeeping. Vulnerability data lives in one schema per loaded DB
-- (ouk_db_<import id>); this schema records imports and which DB is active.
CREATE SCHEMA IF NOT EXISTS ouk_meta;

-- One row per bundle object seen (id derived from bucket, key and ETag).
CREATE TABLE IF NOT EXISTS ouk_meta.imports (
  id            text PRIMARY KEY,
  bucket        text NOT NULL,
  object_key    text NOT NULL,
  etag          text NOT NULL,
  size          bigint,
  digest        text,                -- sha256 of the tarball, set by verify
  version       text,                -- manifest bundleVersion
  kind          text,                -- full | delta
  base_version  text,
  manifest      jsonb,               -- the verified manifest
  manifest_sha256 text,
  schema_name   text,                -- where load put the rows
  state         text NOT NULL DEFAULT 'queued',
                -- queued | verifying | unpacking | loading | activating | active | superseded | failed | rolled-back
  stages        jsonb NOT NULL DEFAULT '{}'::jsonb,
                -- {"verify": {"state","attempts","startedAt","finishedAt","error","code"}, ...}
  error_code    text,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS imports_created_idx ON ouk_meta.imports (created_at DESC);

-- The single row that says which DB readers use. Changing it is the atomic switch.
CREATE TABLE IF NOT EXISTS ouk_meta.state (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  active_import  text,
  active_version text,
  active_schema  text,
  active_digest  text,
  activated_at   timestamptz
);
INSERT INTO ouk_meta.state (singleton) VALUES (true) ON CONFLICT DO NOTHING;

-- Every activation and rollback, newest last: `status` shows it, rollback walks it.
CREATE TABLE IF NOT EXISTS ouk_meta.activations (
  seq           bigserial PRIMARY KEY,
  action        text NOT NULL,       -- activate | rollback
  import_id     text,
  version       text NOT NULL,
  kind          text NOT NULL,
  schema_name   text NOT NULL,
  db_digest     text,
  counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
  feeds         jsonb NOT NULL DEFAULT '[]'::jsonb,
  at            timestamptz NOT NULL DEFAULT now()
);
