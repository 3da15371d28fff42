//! The change feed: a tenant's recorded changes after a cursor, oldest
//! first, each with the user as stored now, for an application that keeps
//! its own copy of the users. The HTTP API (`GET …/changes`) and `userdrop
//! changes` both call [`page`], so they answer alike. A cursor older than
//! what retention kept is refused ([`FeedError::Behind`]) rather than
//! answered with a gap. This module must never change the store.

use serde::Serialize;

use crate::store::changes::{self, Change};
use crate::store::users::{self, Select, User};
use crate::store::{Db, StoreError};

/// The most changes one page holds.
pub const MAX_PAGE: i64 = 1000;

/// One change as the feed gives it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedChange {
    pub seq: i64,
    pub job: i64,
    /// created | updated | deactivated | reactivated | deleted
    pub op: String,
    pub key: String,
    /// The fields this change touched (empty for created and deleted).
    pub changed_fields: Vec<String>,
    /// Their values before the change (the whole user for a deletion).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Box<serde_json::value::RawValue>>,
    pub at: String,
    /// The user as stored now (null once deleted): a consumer that applies
    /// the changes in order may also simply take this.
    #[schema(value_type = Option<Object>)]
    pub user: Option<User>,
}

/// A page of the feed and the cursor of the next.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub changes: Vec<FeedChange>,
    /// Pass as `after` for the next page (the last seq given, or the same
    /// cursor when nothing was new).
    pub next: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("changes up to {through} were removed by retention (changes_retention_days), so the changes after {after} are no longer all here: read every user again (GET /v1/tenants/{{tenant}}/users, or `userdrop users export`), then follow the feed from after={through}")]
    Behind { after: i64, through: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The changes of `tenant` after `after`, at most `limit` (1 to
/// [`MAX_PAGE`]).
pub fn page(db: &impl Db, tenant: &str, after: i64, limit: i64) -> Result<FeedPage, FeedError> {
    let through = changes::pruned_through(db, tenant)?;
    if after < through {
        return Err(FeedError::Behind { after, through });
    }
    let list = changes::after(db, tenant, after, limit.clamp(1, MAX_PAGE))?;
    let next = list.last().map_or(after, |c| c.seq);
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        out.push(item(db, tenant, c)?);
    }
    Ok(FeedPage { changes: out, next })
}

fn item(db: &impl Db, tenant: &str, c: Change) -> Result<FeedChange, StoreError> {
    let mut user = None;
    if c.op != "deleted" {
        users::users_matching(db, tenant, &Select::Key(&c.key), 1, |u| {
            user = Some(u);
            Ok(())
        })?;
    }
    Ok(FeedChange {
        seq: c.seq,
        job: c.job,
        op: c.op,
        key: c.key,
        changed_fields: c.fields,
        before: c
            .before
            .and_then(|b| serde_json::value::RawValue::from_string(b).ok()),
        at: c.at,
        user,
    })
}

/// One line per changed field of a job's changes, for `jobs show
/// --changes`: key, op, field, before, after (a creation is one line with
/// no field; a deletion one line per field it had).
pub fn job_rows(
    db: &impl Db,
    tenant: &str,
    job: i64,
    mut row: impl FnMut([String; 5]),
) -> Result<(), StoreError> {
    changes::of_job(db, tenant, job, |c| {
        let before = parse(c.before.as_deref());
        let after = parse(c.after.as_deref());
        match c.op.as_str() {
            "created" => row([
                c.key.clone(),
                c.op.clone(),
                String::new(),
                String::new(),
                String::new(),
            ]),
            "deleted" => {
                for (field, v) in &before {
                    if !v.is_null() {
                        row([
                            c.key.clone(),
                            c.op.clone(),
                            field.clone(),
                            text(Some(v)),
                            String::new(),
                        ]);
                    }
                }
            }
            _ => {
                for field in &c.fields {
                    row([
                        c.key.clone(),
                        c.op.clone(),
                        field.clone(),
                        text(before.get(field)),
                        text(after.get(field)),
                    ]);
                }
            }
        }
    })
}

fn parse(json: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// A stored value as a CSV cell: text as it is, null empty, the rest as JSON.
fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
