-- The tenant admin's web page (src/http/ui): its users table searches by
-- the prefix of a first or a last name, case-insensitively (ASCII, as
-- SQLite's lower() folds), and pages by keyset on (name, key). The key
-- and the email already have their indexes (migration 001). Two indexes
-- rather than a scan: a tenant of a million users must page as fast as a
-- tenant of ten.
CREATE INDEX users_tenant_first_name ON users (tenant, lower(first_name), key);
CREATE INDEX users_tenant_last_name ON users (tenant, lower(last_name), key);
