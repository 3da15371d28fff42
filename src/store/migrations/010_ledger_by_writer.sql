-- The change ledger is written by the statements that change users
-- (store::users, through store::changes), no longer by triggers. A trigger
-- gave every UPDATE and DELETE of a user a statement journal, and under the
-- job's open savepoint each one cost about 150 µs: a file that changed 1%
-- of a million users ran twice as long. The writer already knows which
-- users it changes, reads their values before, gets the values after from
-- the UPDATE itself (RETURNING), and records the change with one plain
-- insert. `dn` is no longer followed as a change: it is the reference a
-- file's Manager DN is resolved through, not a field of the user.
DROP TRIGGER users_updated;
DROP TRIGGER users_deleted;
