-- userdrop store, version 2: what the daemon's worker needs to resume a job
-- after a crash exactly where it stopped.

-- When the job's file reached `.bak/` and its results were written. A job
-- with a final state but no archived_at is archived again on restart (the
-- archive names derive from the job, so doing it twice changes nothing).
ALTER TABLE jobs ADD COLUMN archived_at TEXT;
-- Where the original was archived, relative to the tenant root (`.bak/…`).
ALTER TABLE jobs ADD COLUMN archived_as TEXT;
