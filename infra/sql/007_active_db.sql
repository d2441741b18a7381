-- The active-DB pointer (one row: which import's schema readers use, and the
-- previous one kept for rollback) is named for what it is. A site upgrading
-- keeps its pointer: the table is renamed, its row untouched.
ALTER TABLE ouk_meta.state RENAME TO active_db;
