-- Stored SBOMs (issue 14): documents kept here, re-scanned after every
-- activation (queue/rescan.ts, functions/sboms/rescan.ts). PostgreSQL is the record:
-- a re-scan job is derivable from it (an SBOM without a result for the newest
-- activation needs one), so a lost Redis loses nothing.
CREATE TABLE IF NOT EXISTS ouk_meta.sboms (
  name          text PRIMARY KEY,      -- [A-Za-z0-9][A-Za-z0-9._-]{0,127}: used in job ids
  format        text NOT NULL,         -- CycloneDX | SPDX
  spec_version  text NOT NULL,
  document      jsonb NOT NULL,        -- the SBOM as given (bounded like the scan API: STELLA_SCAN_MAX_BYTES)
  doc_bytes     integer NOT NULL,
  components    integer NOT NULL,
  -- what its components are looked up by: `package` keys of the affected table
  -- and `cpe:<vendor>:<product>` (lower case); a delta that touches none of
  -- them cannot change its findings
  package_keys  text[] NOT NULL DEFAULT '{}',
  added_by      text,                  -- token subject, or the anonymous client
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sboms_package_keys_idx ON ouk_meta.sboms USING gin (package_keys);

-- The findings of one SBOM against one activation (ouk_meta.activations.seq:
-- an activation, a delta or a rollback), one row per pair: a re-scan job that
-- runs twice finds its row and does nothing. The newest two per SBOM are kept.
CREATE TABLE IF NOT EXISTS ouk_meta.sbom_results (
  sbom            text NOT NULL REFERENCES ouk_meta.sboms (name) ON DELETE CASCADE,
  activation_seq  bigint NOT NULL,
  db_version      text NOT NULL,
  findings        jsonb NOT NULL,      -- the findings, in `stella scan --json`'s shape
  counts          jsonb NOT NULL,      -- {"findings": n, "bySeverity": {...}, "kev": n}
  scanned         boolean NOT NULL,    -- false: carried forward (the activation touched none of its packages)
  seconds         real,
  computed_at     timestamptz NOT NULL,
  PRIMARY KEY (sbom, activation_seq)
);

-- The newest diff per SBOM: what changed between its previous result and its newest.
CREATE TABLE IF NOT EXISTS ouk_meta.sbom_diffs (
  sbom            text PRIMARY KEY REFERENCES ouk_meta.sboms (name) ON DELETE CASCADE,
  from_seq        bigint,
  from_version    text,
  to_seq          bigint NOT NULL,
  to_version      text NOT NULL,
  added           jsonb NOT NULL,
  removed         jsonb NOT NULL,
  changed         jsonb NOT NULL,
  computed_at     timestamptz NOT NULL
);
