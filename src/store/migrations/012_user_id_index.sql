-- The provisioner names a manager by user_id and looks up their key, and an
-- AD file's distinguished names are set by user_id. A tenant keyed by
-- user_id (the default) has key = user_id, so the (tenant, key) index
-- finds those users already: the index by user_id now holds only the users
-- whose key is something else (tenants keyed by email or mobile number).
-- Written by every import for every user, it cost a fresh import of a
-- million users a tenth of its time. `store::users::WITH_USER_ID` reads
-- both.
DROP INDEX users_tenant_user_id;
CREATE INDEX users_tenant_user_id ON users (tenant, user_id)
    WHERE user_id IS NOT NULL AND user_id <> key;
