-- The newest signed time this site has seen (issue 22, freshness): the
-- `created` time of a verified kit's manifest, which the kit's signature
-- covers. Every age (a feed's, the active DB's) is counted from the later of
-- this and the host clock, so a clock set back cannot make old data look
-- new. One row; written only by infra/signed-time.ts, and it never goes back:
-- the trigger keeps the newer time whatever an UPDATE asks for.
CREATE TABLE IF NOT EXISTS ouk_meta.signed_time (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  newest       timestamptz,          -- the newest signed `created` seen; NULL before the first verified kit
  import_id    text,                 -- the import whose kit carried it
  version      text,                 -- that kit's version
  recorded_at  timestamptz           -- this host's clock when it was recorded (for the record only)
);
INSERT INTO ouk_meta.signed_time (singleton) VALUES (true) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION ouk_meta.signed_time_never_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.newest IS NOT NULL AND (NEW.newest IS NULL OR NEW.newest < OLD.newest) THEN
    RETURN OLD;  -- an older time changes nothing, not even who recorded it
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS signed_time_never_back ON ouk_meta.signed_time;
CREATE TRIGGER signed_time_never_back BEFORE UPDATE ON ouk_meta.signed_time
  FOR EACH ROW EXECUTE FUNCTION ouk_meta.signed_time_never_back();
