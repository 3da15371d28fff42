//! The management graph of an import: who each user reports to once the
//! file is applied. A row's `reports_to` must name a user that exists
//! afterwards (a valid row of the file, or a stored user the file does not
//! delete), and the chain of managers must not loop (`c1 → c2 → c1`, within
//! the file or closing over stored users). Rows are known by index and
//! 96-bit hashes, like the plan's other rules; each user is walked once, so
//! a million-row file costs a few binary searches a row and no SQL (stored
//! managers are read in one scan, only when a chain leaves the file).
//! This module must never write to the store or read the file's text
//! beyond the names of the rows on a loop.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::config::Tenant;
use crate::ingest::decode::{RecordReader, Sniffed};
use crate::ingest::error::{FileError, FileErrorCode};
use crate::ingest::headers::{self, HeaderMap};
use crate::ingest::plan::{self, Facts, Hash};
use crate::ingest::schema::FieldKind;
use crate::ingest::validate;
use crate::store::users;
use crate::store::{Db, StoreError};

/// What the graph decided beyond the plan's flags.
#[derive(Debug, Default)]
pub(super) struct Managers {
    /// Per row index on a loop: the loop, starting at that row's user.
    pub loops: HashMap<u32, Vec<Hash>>,
    /// A manager deleted by a DELETE row of the file: the spreadsheet row.
    pub deleted_by: HashMap<Hash, u32>,
    /// The user_id of each user on a loop, as the file (or the store) has it.
    pub names: HashMap<Hash, String>,
}

/// A user on a walk: their user_id's hash, and the row of the file that
/// holds them after the job (None: a stored user the file leaves as is).
type Node = (Hash, Option<u32>);

const NONE: u32 = u32::MAX;
const DONE: u8 = 2;
const ON_PATH: u8 = 1;

/// From how many managers on the file's rows they are looked up on two
/// threads.
const PARALLEL_LOOKUPS: usize = 1 << 16;

/// The rows whose user_id has hash `h`, in a list sorted by hash.
fn rows_of(user_ids: &[(Hash, u32)], h: Hash) -> impl Iterator<Item = u32> + '_ {
    let start = user_ids.partition_point(|(x, _)| *x < h);
    user_ids[start..]
        .iter()
        .take_while(move |(x, _)| *x == h)
        .map(|&(_, i)| i)
}

/// The facts the walk reads. `user_ids` is sorted by hash (as `plan::mark`
/// leaves it); `reports_to` is sorted here by row index. Every manager is
/// looked up once (`cand`), so the rounds of the judgement and the walk
/// follow indexes, not hashes.
struct Graph<'f, S> {
    flags: &'f mut [u8],
    user_ids: &'f [(Hash, u32)],
    reports_to: &'f [(u32, Hash)],
    /// Per row: its entry in `reports_to`, or NONE.
    entry_of: Vec<u32>,
    /// Per entry of `reports_to`: the one row that can hold the manager
    /// (not a DELETE, not a duplicate), or NONE.
    cand: Vec<u32>,
    stored: S,
    deleted_by: HashMap<Hash, u32>,
}

impl<S: Fn(Hash) -> bool> Graph<'_, S> {
    fn is_valid(&self, row: u32) -> bool {
        self.flags[row as usize] & (plan::FAILED | plan::DELETE) == 0
    }

    /// The row that will hold user `h` after the job: valid, not a DELETE.
    fn valid_row(&self, h: Hash) -> Option<u32> {
        rows_of(self.user_ids, h).find(|&i| self.is_valid(i))
    }

    /// A stored user the file does not delete.
    fn stays(&self, h: Hash) -> bool {
        (self.stored)(h) && !self.deleted_by.contains_key(&h)
    }

    /// The user a user_id names after the job, if any.
    fn node(&self, h: Hash) -> Option<Node> {
        match self.valid_row(h) {
            Some(r) => Some((h, Some(r))),
            None => self.stays(h).then_some((h, None)),
        }
    }

    /// The manager of entry `e` of `reports_to` after the job, if they exist.
    fn manager(&self, e: u32) -> Option<Node> {
        let h = self.reports_to[e as usize].1;
        let c = self.cand[e as usize];
        if c != NONE && self.is_valid(c) {
            Some((h, Some(c)))
        } else {
            self.stays(h).then_some((h, None))
        }
    }

    /// Marks `unknown_reports_to` on every row whose manager will not
    /// exist. True when a row that was valid failed (the valid set changed).
    fn mark_unknown(&mut self, loops: &HashMap<u32, Vec<Hash>>) -> bool {
        let mut changed = false;
        for e in 0..self.reports_to.len() {
            let i = self.reports_to[e].0;
            let f = self.flags[i as usize];
            // A row on a loop is told about the loop, once. Rows that failed
            // already are judged too, so that the customer sees every
            // problem of a row at once.
            if f & plan::UNKNOWN_REPORTS_TO != 0 || loops.contains_key(&i) {
                continue;
            }
            if self.manager(e as u32).is_none() {
                self.flags[i as usize] |= plan::UNKNOWN_REPORTS_TO;
                changed |= f & plan::FAILED == 0;
            }
        }
        changed
    }
}

/// Judges every row's manager: unknown, deleted by the file, or on a loop.
/// Sets `UNKNOWN_REPORTS_TO` and, for rows on a loop, `LOCAL` (the loop is
/// in the returned [`Managers`]), and empties `facts.reports_to` (the plan
/// has nothing left to judge there). `stored` says whether a user_id is
/// stored; the stored users' managers are read when a walk first needs one.
pub(super) fn judge(
    facts: &mut Facts,
    stored: impl Fn(Hash) -> bool,
    db: &impl Db,
    tenant: &str,
) -> Result<Managers, StoreError> {
    let mut reports_to = std::mem::take(&mut facts.reports_to);
    reports_to.sort_unstable_by_key(|&(i, _)| i);
    let mut deleted_by = HashMap::new();
    for &(h, i) in &facts.user_ids {
        if facts.flags[i as usize] & (plan::DELETE | plan::FAILED) == plan::DELETE {
            deleted_by.insert(h, facts.row_of[i as usize]);
        }
    }
    let mut entry_of = vec![
        NONE;
        if reports_to.is_empty() {
            0
        } else {
            facts.flags.len()
        }
    ];
    for (e, &(i, _)) in reports_to.iter().enumerate() {
        entry_of[i as usize] = e as u32;
    }
    let user_ids = &facts.user_ids;
    let flags = &facts.flags;
    let lookup = |part: &[(u32, Hash)]| -> Vec<u32> {
        part.iter()
            .map(|&(_, m)| {
                rows_of(user_ids, m)
                    .find(|&j| flags[j as usize] & (plan::DELETE | plan::DUP_USER_ID) == 0)
                    .unwrap_or(NONE)
            })
            .collect()
    };
    // A million searches take a tenth of a second with the other core
    // idle: a long list is searched in two halves at once.
    let cand = if reports_to.len() < PARALLEL_LOOKUPS {
        lookup(&reports_to)
    } else {
        let (a, b) = reports_to.split_at(reports_to.len() / 2);
        let (mut first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| lookup(b));
            (lookup(a), second.join().expect("a lookup does not panic"))
        });
        first.extend(second);
        first
    };
    let mut g = Graph {
        flags: &mut facts.flags,
        user_ids,
        reports_to: &reports_to,
        entry_of,
        cand,
        stored,
        deleted_by,
    };
    let mut loops = HashMap::new();
    let mut stored_edges: Option<Vec<(Hash, Hash)>> = None;
    loop {
        if g.mark_unknown(&loops) {
            continue;
        }
        if reports_to.is_empty() {
            break;
        }
        let found = find_loops(&g, &mut stored_edges, db, tenant)?;
        if found.is_empty() {
            break;
        }
        for cycle in found {
            let hashes: Vec<Hash> = cycle.iter().map(|&(h, _)| h).collect();
            for (n, &(_, row)) in cycle.iter().enumerate() {
                if let Some(i) = row {
                    let mut rotated = hashes[n..].to_vec();
                    rotated.extend_from_slice(&hashes[..n]);
                    loops.insert(i, rotated);
                    g.flags[i as usize] |= plan::LOCAL;
                }
            }
        }
    }
    Ok(Managers {
        loops,
        deleted_by: g.deleted_by,
        names: HashMap::new(),
    })
}

/// Walks every user once along their managers; returns each loop that
/// holds at least one row of the file (a loop of stored users only is not
/// this file's doing).
fn find_loops<S: Fn(Hash) -> bool>(
    g: &Graph<'_, S>,
    stored_edges: &mut Option<Vec<(Hash, Hash)>>,
    db: &impl Db,
    tenant: &str,
) -> Result<Vec<Vec<Node>>, StoreError> {
    let mut row_state = vec![0u8; g.flags.len()];
    let mut stored_state: HashMap<Hash, u8> = HashMap::new();
    let mut found = Vec::new();
    let mut path: Vec<Node> = Vec::new();
    for &(start, i) in g.user_ids {
        if row_state[i as usize] != 0 || !g.is_valid(i) {
            continue;
        }
        path.clear();
        let mut at: Node = (start, Some(i));
        loop {
            let state = match at.1 {
                Some(r) => row_state[r as usize],
                None => stored_state.get(&at.0).copied().unwrap_or(0),
            };
            if state == ON_PATH {
                let from = path.iter().position(|n| *n == at).unwrap_or(0);
                let cycle = path[from..].to_vec();
                if cycle.iter().any(|(_, row)| row.is_some()) {
                    found.push(cycle);
                }
                break;
            }
            if state == DONE {
                break;
            }
            match at.1 {
                Some(r) => row_state[r as usize] = ON_PATH,
                None => {
                    stored_state.insert(at.0, ON_PATH);
                }
            }
            path.push(at);
            // The user's manager after the job.
            let next = match at.1 {
                Some(r) => match g.entry_of[r as usize] {
                    NONE => None,
                    e => g.manager(e),
                },
                None => {
                    let edges = match stored_edges {
                        Some(e) => e,
                        None => stored_edges.insert(users::managers(db, tenant)?),
                    };
                    edges
                        .binary_search_by_key(&at.0, |&(u, _)| u)
                        .ok()
                        .and_then(|n| g.node(edges[n].1))
                }
            };
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        for &(h, row) in &path {
            match row {
                Some(r) => row_state[r as usize] = DONE,
                None => {
                    stored_state.insert(h, DONE);
                }
            }
        }
    }
    Ok(found)
}

/// Reads the user_ids of the users on the loops: from the file's rows
/// (read once more; loops are rare), then the store for the rest.
pub(super) fn loop_names(
    db: &impl Db,
    tenant: &Tenant,
    path: &Path,
    sniffed: &Sniffed,
    map: &HeaderMap,
    managers: &Managers,
) -> Result<HashMap<Hash, String>, FileError> {
    let wanted: HashSet<Hash> = managers.loops.values().flatten().copied().collect();
    let mut names = HashMap::new();
    if let Some(col) = map.column(&tenant.schema, FieldKind::UserId) {
        let mut reader = RecordReader::open(path, sniffed)?;
        headers::skip_header(&mut reader, map)?;
        while let Some(rec) = reader.next_record()? {
            if let Some(uid) = rec.get(col).map(validate::clean) {
                let h = users::hash96(uid);
                if wanted.contains(&h) {
                    names.entry(h).or_insert_with(|| uid.to_string());
                }
            }
        }
    }
    let rest: Vec<Hash> = wanted
        .iter()
        .filter(|h| !names.contains_key(*h))
        .copied()
        .collect();
    if !rest.is_empty() {
        let stored = users::user_ids_of(db, &tenant.name, &rest).map_err(|e| {
            FileError::new(
                FileErrorCode::Unreadable,
                format!("the store could not be read: {e}"),
            )
        })?;
        names.extend(stored);
    }
    Ok(names)
}

/// The names a loop message shows: each user's user_id as the file or the
/// store holds it.
pub(super) fn describe(cycle: &[Hash], names: &HashMap<Hash, String>) -> String {
    const SHOWN: usize = 10;
    let name = |h: &Hash| names.get(h).map(String::as_str).unwrap_or("?").to_string();
    let mut parts: Vec<String> = cycle.iter().take(SHOWN).map(name).collect();
    if cycle.len() > SHOWN {
        parts.push(format!("… ({} users in all)", cycle.len()));
    }
    parts.push(name(&cycle[0]));
    parts.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::hash96 as h;

    fn facts(rows: &[(&str, &str)], flags: Vec<u8>) -> Facts {
        Facts {
            row_of: (0..rows.len() as u32).map(|i| i + 2).collect(),
            flags,
            user_ids: {
                let mut v: Vec<_> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, (u, _))| (h(u), i as u32))
                    .collect();
                v.sort_unstable();
                v
            },
            reports_to: rows
                .iter()
                .enumerate()
                .filter(|(_, (_, m))| !m.is_empty())
                .map(|(i, (_, m))| (i as u32, h(m)))
                .rev()
                .collect(),
            ..Default::default()
        }
    }

    fn judge_plain(f: &mut Facts, stored: &[&str]) -> Managers {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("u.db")).unwrap();
        let stored: Vec<Hash> = stored.iter().map(|s| h(s)).collect();
        judge(f, |x| stored.contains(&x), &store, "t").unwrap()
    }

    #[test]
    fn a_loop_in_the_file_fails_its_rows_only() {
        let mut f = facts(
            &[
                ("c1", "c2"),
                ("c2", "c3"),
                ("c3", "c1"),
                ("d", "c1"),
                ("e", ""),
            ],
            vec![0; 5],
        );
        let m = judge_plain(&mut f, &[]);
        assert_eq!(f.flags[..3], [plan::LOCAL; 3]);
        // d reports to a user whose row fails: as for any failed manager.
        assert_eq!(f.flags[3], plan::UNKNOWN_REPORTS_TO);
        assert_eq!(f.flags[4], 0);
        assert_eq!(m.loops[&1], vec![h("c2"), h("c3"), h("c1")]);
        assert!(f.reports_to.is_empty());
    }

    #[test]
    fn a_manager_deleted_by_the_file_does_not_exist() {
        let mut f = facts(&[("m", ""), ("a", "m")], vec![plan::DELETE, 0]);
        let m = judge_plain(&mut f, &["m"]);
        assert_eq!(f.flags[1], plan::UNKNOWN_REPORTS_TO);
        assert_eq!(m.deleted_by[&h("m")], 2);
    }

    #[test]
    fn managers_past_the_parallel_threshold_are_found_in_both_halves() {
        // Rows 1-999 report to U0, the others to U(i % 1000); rows 100 and
        // 120,000 (one in each half of the list) name nobody in the file,
        // and U500 is on two rows (a duplicate is no manager).
        let n = PARALLEL_LOOKUPS * 2 + 10;
        let rows: Vec<(String, String)> = (0..n)
            .map(|i| {
                let manager = match i {
                    0 => String::new(),
                    100 | 120_000 => "nobody".to_string(),
                    1..=999 => "U0".to_string(),
                    _ => format!("U{}", i % 1000),
                };
                (format!("U{i}"), manager)
            })
            .collect();
        let refs: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut flags = vec![0; n];
        flags[500] = plan::DUP_USER_ID;
        let mut f = facts(&refs, flags);
        judge_plain(&mut f, &[]);
        let unknown: Vec<usize> = (0..n)
            .filter(|&i| f.flags[i] & plan::UNKNOWN_REPORTS_TO != 0)
            .collect();
        // Row 100 fails, so the rows it manages fail too.
        let want: Vec<usize> = (0..n)
            .filter(|&i| {
                i == 100 || i == 120_000 || (i >= 1000 && (i % 1000 == 100 || i % 1000 == 500))
            })
            .collect();
        assert_eq!(unknown.len(), want.len());
        assert!(
            unknown == want,
            "the managers found differ from the sequential rule"
        );
    }

    #[test]
    fn a_tree_is_no_loop() {
        let rows: Vec<(String, String)> = (0..2000)
            .map(|i| {
                (
                    format!("U{i}"),
                    if i == 0 {
                        String::new()
                    } else {
                        format!("U{}", i / 10)
                    },
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut f = facts(&refs, vec![0; refs.len()]);
        let m = judge_plain(&mut f, &[]);
        assert!(m.loops.is_empty());
        assert!(f.flags.iter().all(|&x| x == 0));
    }
}
