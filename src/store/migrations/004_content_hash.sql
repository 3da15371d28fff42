-- userdrop store, version 4: what a job read. The hash (xxh3-128, 32 hex
-- digits) of the file's bytes, recorded by the daemon's worker the first
-- time the job runs; a re-run from the spool and `jobs approve` refuse a
-- file whose bytes differ. NULL for jobs from before this version and for
-- CLI imports (not checked).
ALTER TABLE jobs ADD COLUMN content_hash TEXT;
