-- userdrop store, version 5: a user's distinguished name, as an Active
-- Directory export names it (compared form: trimmed, lower case, no spaces
-- after commas). Kept so that a later file's `Manager` DN finds a manager
-- who is not in that file. NULL for users no AD export described.
ALTER TABLE users ADD COLUMN dn TEXT;
CREATE INDEX users_tenant_dn ON users (tenant, dn) WHERE dn IS NOT NULL;
