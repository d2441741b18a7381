-- The free-token e-mail desk (stella token desk, publisher/token-desk/): every
-- token it signs for a mail, on record before the reply leaves. The limits
-- per address and per domain count these rows (not memory), so a restarted
-- desk forgets nothing. Written only by infra/token-desk-record.ts.
CREATE TABLE IF NOT EXISTS ouk_meta.desk_tokens (
  jti                 text PRIMARY KEY,      -- the token id (its jti claim)
  issued_at           timestamptz NOT NULL,  -- the desk's clock: the token's iat
  address             text NOT NULL,         -- what the per-address limit counts: the sender, lower case, +tag removed
  domain              text NOT NULL,         -- the sender's domain, lower case
  sent_to             text NOT NULL,         -- the envelope sender the reply went to (lower case)
  tier                integer NOT NULL,
  expires_at          timestamptz NOT NULL,  -- the token's exp
  -- sending: on record, reply under way (or the desk stopped meanwhile: counted, it may have left);
  -- sent: the relay took the reply; failed: the relay refused it, the token never left (not counted)
  state               text NOT NULL CHECK (state IN ('sending', 'sent', 'failed')),
  request_message_id  text,                  -- the request's Message-ID, when it had a sane one
  client_ip           text,                  -- the connecting MTA
  error               text,                  -- why the relay refused it (failed)
  updated_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS desk_tokens_address_idx ON ouk_meta.desk_tokens (address, issued_at DESC);
CREATE INDEX IF NOT EXISTS desk_tokens_domain_idx ON ouk_meta.desk_tokens (domain, issued_at DESC);
