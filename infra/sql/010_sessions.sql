-- Sessions and sign-in abuse control (docs/operations.md, "Signing in").
--
-- ouk_meta.sessions (owner: infra/sessions.ts): one row per signed-in person.
-- The cookie carries an opaque random id; only its SHA-256 is kept here, so a
-- read of this table signs nobody in. Any API replica answers for any session.
-- A session ends at its idle timeout (last_seen_at), its absolute timeout
-- (expires_at) or at sign-out (ended_at); ended rows are deleted later.
CREATE TABLE IF NOT EXISTS ouk_meta.sessions (
  id_hash       bytea PRIMARY KEY,          -- sha256 of the cookie's random id
  sub           text NOT NULL,              -- the person's stable identity (identity/person.ts)
  username      text NOT NULL,
  display_name  text,
  roles         text[] NOT NULL,            -- viewer | operator | admin, as granted at sign-in
  via           text NOT NULL,              -- ldap | oidc | break-glass
  address       text,                       -- the client address at sign-in
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,       -- the absolute timeout
  ended_at      timestamptz                 -- sign-out
);
CREATE INDEX IF NOT EXISTS sessions_expires_idx ON ouk_meta.sessions (expires_at);

-- ouk_meta.login_attempts (owner: infra/login-attempts.ts): failed sign-ins
-- counted per account and per source address. Keys are SHA-256 hashes (a
-- password typed into the user-name field is never stored); an unknown user
-- and a wrong password count the same.
CREATE TABLE IF NOT EXISTS ouk_meta.login_attempts (
  kind          text NOT NULL CHECK (kind IN ('account', 'address')),
  key_hash      bytea NOT NULL,
  failures      integer NOT NULL,
  first_at      timestamptz NOT NULL,       -- start of the counting window
  last_at       timestamptz NOT NULL,
  locked_until  timestamptz,                -- back-off or lockout: no attempt is checked before it
  PRIMARY KEY (kind, key_hash)
);

-- The audit trail names how a person signed in (ldap, oidc, token, break-glass; cli for the OS user).
ALTER TABLE ouk_meta.audit ADD COLUMN IF NOT EXISTS via text;
