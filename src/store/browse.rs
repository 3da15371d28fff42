//! A tenant's users as a person browses them (the web page's users table):
//! a page at a time, in key order or found by the prefix of their key,
//! email or name, paged by keyset in both directions. Every page is one
//! range read of an index ((tenant, key), (tenant, email), or the name
//! index `user_names` of [`super::names`]), so the millionth user costs
//! what the first does; nothing here counts or skips rows (no OFFSET). The
//! name index follows the change ledger rather than the import, so each of
//! its entries is checked against the user as stored: a name changed a
//! moment ago is found once the index caught up, and an old one is never
//! shown. This module must never write.

use rusqlite::params;

use super::{Db, StoreError};

/// What the table shows of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: bool,
    pub roles: Vec<String>,
    pub reports_to: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Which users a page is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find<'a> {
    /// Every user, by key.
    All,
    /// Keys starting with this text (as written: keys are exact), by key.
    Key(&'a str),
    /// Emails starting with this text, any case, by email.
    Email(&'a str),
    /// First or last names starting with this text, any case (ASCII), by
    /// the name that matched, then key.
    Name(&'a str),
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor<'a> {
    /// The first page.
    Start,
    /// The page after the user with this key (the last of the page shown).
    After(&'a str),
    /// The page before the user with this key (the first of the page shown).
    Before(&'a str),
}

/// One page, in the order of its [`Find`], and whether there are users
/// beyond it in the direction it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub users: Vec<Listed>,
    pub more: bool,
}

const COLUMNS: &str = "u.key, u.email, u.first_name, u.last_name, u.enabled, u.roles, \
     u.reports_to, u.created_at, u.updated_at";

/// The end of a prefix range: no string starting with the prefix sorts at
/// or past it.
fn upper(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// One index to read: the sort term (an SQL expression) and its prefix.
struct Stream {
    term: &'static str,
    prefix: Option<String>,
}

/// At most `limit` users of `tenant` that `find` picks, from `from`.
pub fn page(
    db: &impl Db,
    tenant: &str,
    find: Find<'_>,
    from: Cursor<'_>,
    limit: i64,
) -> Result<Page, StoreError> {
    let s = match find {
        Find::All => stream("u.key", None),
        Find::Key(p) => stream("u.key", Some(p.to_string())),
        Find::Email(p) => stream("u.email", Some(p.to_string())),
        Find::Name(p) => stream("n.name", Some(p.to_ascii_lowercase())),
    };
    // The cursor's place in this order: its user's term in each stream.
    let (cursor_key, backwards) = match from {
        Cursor::Start => (None, false),
        Cursor::After(k) => (Some(k), false),
        Cursor::Before(k) => (Some(k), true),
    };
    let cursor = match cursor_key {
        None => None,
        Some(k) => match cursor_term(db, tenant, find, k)? {
            Some(t) => Some((t, k.to_string())),
            // The cursor's user is gone: start again from the top.
            None => return page(db, tenant, find, Cursor::Start, limit),
        },
    };
    // In the index's order already, nearest the cursor first (for an
    // email, SQLite's case-blind order).
    let mut merged = read(db, tenant, &s, cursor.as_ref(), backwards, limit + 1)?;
    let more = merged.len() as i64 > limit;
    merged.truncate(limit.max(0) as usize);
    if backwards {
        merged.reverse();
    }
    Ok(Page {
        users: merged.into_iter().map(|(_, u)| u).collect(),
        more,
    })
}

fn stream(term: &'static str, prefix: Option<String>) -> Stream {
    Stream { term, prefix }
}

/// The sort term of the user `key` under `find`, as the streams compare it
/// (`None`: no such user).
fn cursor_term(
    db: &impl Db,
    tenant: &str,
    find: Find<'_>,
    key: &str,
) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    let conn = db.sql();
    let row: Option<(String, String, Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT key, email, lower(first_name), lower(last_name) FROM users WHERE tenant = ?1 AND key = ?2",
        )?
        .query_row(params![tenant, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((key, email, first, last)) = row else {
        return Ok(None);
    };
    Ok(Some(match find {
        Find::All | Find::Key(_) => key,
        Find::Email(_) => email,
        Find::Name(p) => {
            let p = p.to_ascii_lowercase();
            match first {
                Some(f) if f.starts_with(&p) => f,
                _ => last.unwrap_or_default(),
            }
        }
    }))
}

/// Up to `limit` rows of one stream past the cursor, each with its term.
fn read(
    db: &impl Db,
    tenant: &str,
    s: &Stream,
    cursor: Option<&(String, String)>,
    backwards: bool,
    limit: i64,
) -> Result<Vec<(String, Listed)>, StoreError> {
    let term = s.term;
    let (op, order) = if backwards {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let names = term == "n.name";
    let mut sql = if names {
        // The name index, each entry checked against the user as stored
        // (it follows the ledger): the name is still theirs, and a user
        // whose first name matches too is listed once, by it.
        format!(
            "SELECT {COLUMNS}, {term} FROM user_names n
             JOIN users u ON u.tenant = n.tenant AND u.key = n.key
             WHERE n.tenant = ?1
               AND (lower(u.first_name) = n.name OR lower(u.last_name) = n.name)
               AND NOT (coalesce(lower(u.first_name), '') <> n.name
                        AND coalesce(lower(u.first_name), '') >= ?2
                        AND coalesce(lower(u.first_name), '') < ?3)"
        )
    } else {
        format!("SELECT {COLUMNS}, {term} FROM users u WHERE u.tenant = ?1")
    };
    if s.prefix.is_some() {
        sql.push_str(&format!(" AND {term} >= ?2 AND {term} < ?3"));
    }
    // The key and the email are unique in a tenant: their own order needs
    // no second term (and reads their unique index as it is).
    let (unique, key) = if names {
        (false, "n.key")
    } else {
        (true, "u.key")
    };
    if cursor.is_some() {
        if unique {
            sql.push_str(&format!(" AND {term} {op} ?4"));
        } else {
            sql.push_str(&format!(" AND ({term}, {key}) {op} (?4, ?5)"));
        }
    }
    if unique {
        sql.push_str(&format!(" ORDER BY {term} {order} LIMIT ?6"));
    } else {
        sql.push_str(&format!(" ORDER BY {term} {order}, {key} {order} LIMIT ?6"));
    }
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(&sql)?;
    let (lo, hi) = match &s.prefix {
        Some(p) => (Some(p.clone()), Some(upper(p))),
        None => (None, None),
    };
    let (ct, ck) = match cursor {
        Some((t, k)) => (Some(t.as_str()), Some(k.as_str())),
        None => (None, None),
    };
    // Unused numbered parameters are simply absent from the statement.
    let mut out = Vec::new();
    let mut rows = {
        let mut bind: Vec<(usize, &dyn rusqlite::ToSql)> = vec![(1, &tenant)];
        if s.prefix.is_some() {
            bind.push((2, &lo));
            bind.push((3, &hi));
        }
        if cursor.is_some() {
            bind.push((4, &ct));
            if !unique {
                bind.push((5, &ck));
            }
        }
        bind.push((6, &limit));
        for (i, v) in bind {
            stmt.raw_bind_parameter(i, v)?;
        }
        stmt.raw_query()
    };
    while let Some(r) = rows.next()? {
        let roles: String = r.get(5)?;
        let listed = Listed {
            key: r.get(0)?,
            email: r.get(1)?,
            first_name: r.get(2)?,
            last_name: r.get(3)?,
            enabled: r.get::<_, i64>(4)? != 0,
            roles: super::directory::roles_of(&roles)?,
            reports_to: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
        };
        let t: Option<String> = r.get(9)?;
        out.push((t.unwrap_or_default(), listed));
    }
    Ok(out)
}

/// When the user `key` was created and last changed, if it exists.
pub fn stamps(
    db: &impl Db,
    tenant: &str,
    key: &str,
) -> Result<Option<(String, String)>, StoreError> {
    use rusqlite::OptionalExtension;
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT created_at, updated_at FROM users WHERE tenant = ?1 AND key = ?2")?
        .query_row(params![tenant, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with(users: &[(&str, &str, &str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("u.db")).unwrap();
        for (key, email, first, last) in users {
            s.conn
                .execute(
                    "INSERT INTO users (tenant, key, email, first_name, last_name, created_job, updated_job, created_at, updated_at)
                     VALUES ('t', ?1, ?2, ?3, ?4, 1, 1, 'c', 'u')",
                    params![key, email, first, last],
                )
                .unwrap();
        }
        // What `userdrop serve` keeps up after each job.
        crate::store::names::rebuild(&s, "t").unwrap();
        (dir, s)
    }

    fn keys(p: &Page) -> Vec<&str> {
        p.users.iter().map(|u| u.key.as_str()).collect()
    }

    #[test]
    fn pages_forwards_and_backwards_by_key() {
        let users: Vec<(String, String)> = (0..7)
            .map(|i| (format!("k{i}"), format!("u{i}@x.example")))
            .collect();
        let rows: Vec<(&str, &str, &str, &str)> = users
            .iter()
            .map(|(k, e)| (k.as_str(), e.as_str(), "A", "B"))
            .collect();
        let (_d, s) = store_with(&rows);
        let p1 = page(&s, "t", Find::All, Cursor::Start, 3).unwrap();
        assert_eq!(keys(&p1), ["k0", "k1", "k2"]);
        assert!(p1.more);
        let p3 = page(&s, "t", Find::All, Cursor::After("k5"), 3).unwrap();
        assert_eq!(keys(&p3), ["k6"]);
        assert!(!p3.more);
        let back = page(&s, "t", Find::All, Cursor::Before("k4"), 3).unwrap();
        assert_eq!(keys(&back), ["k1", "k2", "k3"]);
        assert!(back.more);
        let back = page(&s, "t", Find::All, Cursor::Before("k2"), 3).unwrap();
        assert_eq!(keys(&back), ["k0", "k1"]);
        assert!(!back.more);
    }

    #[test]
    fn finds_by_prefix_and_lists_a_name_match_once() {
        let (_d, s) = store_with(&[
            ("1", "ada@x.example", "Ada", "Lovelace"),
            ("2", "Alan@x.example", "Alan", "Turing"),
            ("3", "grace@x.example", "Grace", "Hopper"),
            ("4", "al@x.example", "Al", "Alvarez"),
            ("5", "bob@x.example", "Bob", "Alder"),
        ]);
        let p = page(&s, "t", Find::Name("al"), Cursor::Start, 10).unwrap();
        // By the matched name, lowercased: al (4), alan (2), alder (5).
        assert_eq!(keys(&p), ["4", "2", "5"]);
        let next = page(&s, "t", Find::Name("AL"), Cursor::After("2"), 10).unwrap();
        assert_eq!(keys(&next), ["5"]);
        let before = page(&s, "t", Find::Name("al"), Cursor::Before("5"), 1).unwrap();
        assert_eq!(keys(&before), ["2"]);
        assert!(before.more);
        let e = page(&s, "t", Find::Email("AL"), Cursor::Start, 10).unwrap();
        // Any case, in the email's case-blind order: al@ before alan@.
        assert_eq!(keys(&e), ["4", "2"]);
        let e = page(&s, "t", Find::Email("al"), Cursor::After("4"), 10).unwrap();
        assert_eq!(keys(&e), ["2"]);
        let e = page(&s, "t", Find::Email("al"), Cursor::Before("2"), 10).unwrap();
        assert_eq!(keys(&e), ["4"]);
        assert!(!e.more);
        let k = page(&s, "t", Find::Key("3"), Cursor::Start, 10).unwrap();
        assert_eq!(keys(&k), ["3"]);
        let none = page(&s, "t", Find::Name("%"), Cursor::Start, 10).unwrap();
        assert!(none.users.is_empty());
        // The name index follows the ledger: until it has, a renamed
        // user's old name finds nobody (each entry is checked against the
        // user), and the new one is found once it has.
        s.conn
            .execute("UPDATE users SET first_name = 'Zoe' WHERE key = '3'", [])
            .unwrap();
        let by_name = |p| keys(&page(&s, "t", Find::Name(p), Cursor::Start, 10).unwrap()).join(",");
        assert_eq!(by_name("gra"), "");
        assert_eq!(by_name("zo"), "");
        crate::store::names::rebuild(&s, "t").unwrap();
        assert_eq!(by_name("zo"), "3");
        assert_eq!(by_name("hop"), "3");
        assert_eq!(stamps(&s, "t", "1").unwrap().unwrap().1, "u");
        assert!(stamps(&s, "u", "1").unwrap().is_none());
    }
}
