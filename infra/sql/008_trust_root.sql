-- The site's root of trust as it moved forward (issue 22): the pinned root
-- (OUK_TRUST_ROOT) and every root a verified kit carried on the chain from it,
-- each exactly as its signers wrote it. The site's current root is the newest
-- version of the chain that starts at the pinned file (`pinned_sha256`, the
-- SHA-256 of that file's bytes): pinning another file starts another chain,
-- the operator's deliberate act. Written only by infra/trust-roots.ts, and only
-- once a kit carrying the roots has verified; insert-only (the trigger refuses
-- UPDATE and DELETE), so the current root never goes back.
CREATE TABLE IF NOT EXISTS ouk_meta.trust_roots (
  pinned_sha256  text NOT NULL CHECK (pinned_sha256 ~ '^[0-9a-f]{64}$'),
  version        integer NOT NULL CHECK (version >= 1),
  document       bytea NOT NULL CHECK (octet_length(document) <= 1048576),
  sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  expires        timestamptz NOT NULL,
  source         text NOT NULL,         -- OUK_TRUST_ROOT=/path, or the kit member it came from
  import_id      text,                  -- the import whose verified kit carried it (NULL for the pinned root)
  kit_version    text,
  stored_at      timestamptz NOT NULL,  -- this host's clock when it was stored
  PRIMARY KEY (pinned_sha256, version)
);

CREATE OR REPLACE FUNCTION ouk_meta.trust_roots_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ouk_meta.trust_roots is insert-only: a root of trust never goes back';
END
$$;
DROP TRIGGER IF EXISTS trust_roots_insert_only ON ouk_meta.trust_roots;
CREATE TRIGGER trust_roots_insert_only BEFORE UPDATE OR DELETE ON ouk_meta.trust_roots
  FOR EACH ROW EXECUTE FUNCTION ouk_meta.trust_roots_insert_only();
