//! The rules that need the whole file: a user_id or email on two rows fails
//! every row involved, and `reports_to` must name a user that is stored or
//! on a valid row anywhere in the file (order does not matter). Rows are
//! known here only by index and 96-bit hashes, so a million-row file costs
//! a few tens of MB, never its text. This module must never read the file
//! or the store itself: it is given facts and returns flags.

use std::collections::HashMap;

/// Row flags. A row with any flag set fails.
pub const LOCAL: u8 = 1;
pub const DUP_USER_ID: u8 = 2;
pub const DUP_EMAIL: u8 = 4;
pub const DUP_KEY: u8 = 8;
pub const UNKNOWN_REPORTS_TO: u8 = 16;
/// Not failures: the row's key is stored already; the stored user was last
/// written by an identical row (nothing to do); the row is a DELETE.
pub const STORED: u8 = 32;
pub const UNCHANGED: u8 = 64;
pub const DELETE: u8 = 128;
pub const FAILED: u8 = LOCAL | DUP_USER_ID | DUP_EMAIL | DUP_KEY | UNKNOWN_REPORTS_TO;

/// Where else a duplicated value appears: the first few rows and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dup {
    pub rows: Vec<u32>,
    pub total: usize,
}

impl Dup {
    pub fn describe(&self) -> String {
        let shown: Vec<String> = self.rows.iter().map(|r| r.to_string()).collect();
        let more = self.total.saturating_sub(self.rows.len());
        let noun = if self.total == 1 { "row" } else { "rows" };
        if more > 0 {
            format!("{noun} {} and {more} more", shown.join(", "))
        } else {
            format!("{noun} {}", shown.join(", "))
        }
    }
}

/// A 96-bit hash as three words (see `store::users::Hash`).
pub type Hash = crate::store::users::Hash;

/// Everything pass 1 learned, per data row (index = order in the file,
/// blank rows excluded).
#[derive(Debug, Default)]
pub struct Facts {
    pub flags: Vec<u8>,
    pub row_of: Vec<u32>,
    /// (hash of user_id, row index) of every row with a user_id.
    pub user_ids: Vec<(Hash, u32)>,
    /// (hash of lower-cased email, row index).
    pub emails: Vec<(Hash, u32)>,
    /// (hash of key, row index): only used when the key is neither user_id
    /// nor email (those are checked above).
    pub keys: Vec<(Hash, u32)>,
    /// (row index, hash of the reports_to user_id) of every non-DELETE row
    /// naming a manager, in row order.
    pub reports_to: Vec<(u32, Hash)>,
    /// Per row: the fingerprint of the valid row (0 for failed rows).
    /// Empty when no user was stored (a fingerprint is only compared with
    /// a stored one): 8 MB of fresh memory on a million-row first file.
    pub fingerprints: Vec<i64>,
}

/// Which list holds the rows' keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyList {
    UserIds,
    Emails,
    Keys,
}

/// Cross-row verdicts.
#[derive(Debug, Default)]
pub struct Plan {
    pub flags: Vec<u8>,
    pub row_of: Vec<u32>,
    /// Per (row index, flag): the other rows with the same value.
    pub dups: HashMap<(u32, u8), Dup>,
    /// Every key named by any row, valid or not (sorted): users a sync must
    /// not touch.
    named: Vec<(Hash, u32)>,
    fingerprints: Vec<i64>,
}

impl Plan {
    /// Marks rows whose key is stored, and those whose stored user was
    /// last written by an identical row. `stored` is sorted by key hash;
    /// both lists are walked once, in order (no random lookups).
    pub fn match_stored(&mut self, stored: &[(Hash, i64)]) {
        let mut j = 0;
        for &(key, i) in &self.named {
            while j < stored.len() && stored[j].0 < key {
                j += 1;
            }
            if j < stored.len() && stored[j].0 == key {
                let f = &mut self.flags[i as usize];
                *f |= STORED;
                let fp = self.fingerprints.get(i as usize).copied().unwrap_or(0);
                if fp != 0 && fp == stored[j].1 && *f & (FAILED | DELETE) == 0 {
                    *f |= UNCHANGED;
                }
            }
        }
        self.fingerprints = Vec::new();
    }

    pub fn names(&self, key: Hash) -> bool {
        self.named.binary_search_by(|(h, _)| h.cmp(&key)).is_ok()
    }
}

const SHOWN_ROWS: usize = 5;

/// Flags the rows that share a hash of `entries` (sorted).
fn mark_duplicates(
    entries: &[(Hash, u32)],
    flag: u8,
    flags: &mut [u8],
    row_of: &[u32],
    dups: &mut HashMap<(u32, u8), Dup>,
) {
    let mut start = 0;
    while start < entries.len() {
        let mut end = start + 1;
        while end < entries.len() && entries[end].0 == entries[start].0 {
            end += 1;
        }
        if end - start > 1 {
            let run = &entries[start..end];
            for &(_, i) in run {
                flags[i as usize] |= flag;
                let others: Vec<u32> = run
                    .iter()
                    .filter(|(_, j)| *j != i)
                    .take(SHOWN_ROWS)
                    .map(|(_, j)| row_of[*j as usize])
                    .collect();
                dups.insert(
                    (i, flag),
                    Dup {
                        rows: others,
                        total: run.len() - 1,
                    },
                );
            }
        }
        start = end;
    }
}

/// Sorts by hash, then row (the order of the tuples), compared as one
/// 128-bit number: a third less time than comparing word by word.
fn sort(entries: &mut [(Hash, u32)]) {
    entries.sort_unstable_by_key(|&([a, b, c], i)| {
        (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(i)
    });
}

/// Step one: duplicates. Frees the lists no later step needs (the emails,
/// when the key is not the email), before the plan's other lists grow.
pub fn mark(mut facts: Facts, key_list: KeyList) -> (Facts, HashMap<(u32, u8), Dup>) {
    // Sorted side by side: a million hashes take a tenth of a second each,
    // with the other core idle.
    let (user_ids, emails) = (&mut facts.user_ids, &mut facts.emails);
    std::thread::scope(|s| {
        s.spawn(|| sort(user_ids));
        sort(emails);
    });
    sort(&mut facts.keys);
    let mut dups = HashMap::new();
    let flags = &mut facts.flags;
    mark_duplicates(
        &facts.user_ids,
        DUP_USER_ID,
        flags,
        &facts.row_of,
        &mut dups,
    );
    mark_duplicates(&facts.emails, DUP_EMAIL, flags, &facts.row_of, &mut dups);
    mark_duplicates(&facts.keys, DUP_KEY, flags, &facts.row_of, &mut dups);
    if key_list != KeyList::Emails {
        facts.emails = Vec::new();
    }
    (facts, dups)
}

/// Step two: `reports_to`. `stored_user_id` says whether a user_id (by
/// hash) is already in the store.
pub fn resolve(
    facts: Facts,
    dups: HashMap<(u32, u8), Dup>,
    key_list: KeyList,
    stored_user_id: impl Fn(Hash) -> bool,
) -> Plan {
    let Facts {
        mut flags,
        row_of,
        user_ids,
        emails,
        keys,
        reports_to,
        fingerprints,
    } = facts;
    // A manager on a row that fails is not "on a valid row": failing one
    // row can fail the rows that report to it, so repeat until stable
    // (user_ids is sorted by hash after `mark`). The import judges managers
    // in `graph` and leaves `reports_to` empty, and then the list of valid
    // user_ids (16 bytes a row, fresh memory) is not built at all.
    while !reports_to.is_empty() {
        let valid: Vec<Hash> = user_ids
            .iter()
            .filter(|(_, i)| flags[*i as usize] & (FAILED | DELETE) == 0)
            .map(|(h, _)| *h)
            .collect();
        let mut changed = false;
        for &(i, rt) in &reports_to {
            // Rows that failed already are judged too, so that the customer
            // sees every problem of a row at once.
            let f = &mut flags[i as usize];
            if *f & UNKNOWN_REPORTS_TO != 0 {
                continue;
            }
            if valid.binary_search(&rt).is_err() && !stored_user_id(rt) {
                *f |= UNKNOWN_REPORTS_TO;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let named = match key_list {
        KeyList::UserIds => user_ids,
        KeyList::Emails => emails,
        KeyList::Keys => keys,
    };
    Plan {
        flags,
        row_of,
        dups,
        named,
        fingerprints,
    }
}

/// Both steps, for callers with the store's answers at hand.
pub fn plan(facts: Facts, key_list: KeyList, stored_user_id: impl Fn(Hash) -> bool) -> Plan {
    let (facts, dups) = mark(facts, key_list);
    resolve(facts, dups, key_list, stored_user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        crate::store::users::hash96(s)
    }

    #[test]
    fn duplicates_fail_every_row_involved() {
        let facts = Facts {
            flags: vec![0, 0, 0, LOCAL],
            row_of: vec![2, 3, 4, 5],
            user_ids: vec![(h("U1"), 0), (h("U2"), 1), (h("U1"), 2), (h("U1"), 3)],
            emails: vec![(h("a@x"), 0), (h("b@x"), 1), (h("c@x"), 2)],
            ..Default::default()
        };
        let p = plan(facts, KeyList::UserIds, |_| false);
        assert_eq!(
            p.flags,
            vec![DUP_USER_ID, 0, DUP_USER_ID, LOCAL | DUP_USER_ID]
        );
        assert_eq!(p.dups[&(0, DUP_USER_ID)].describe(), "rows 4, 5");
        assert!(p.names(h("U1")) && p.names(h("U2")) && !p.names(h("U3")));
    }

    #[test]
    fn reports_to_resolves_in_any_order_and_through_failures() {
        // row0 -> row2 (later in file), row1 -> stored S, row3 -> row4 which fails,
        // row5 -> row3 (fails in the second round), row6 -> nobody.
        let facts = Facts {
            flags: vec![0, 0, 0, 0, LOCAL, 0, 0],
            row_of: vec![2, 3, 4, 5, 6, 7, 8],
            user_ids: vec![
                (h("A"), 0),
                (h("B"), 1),
                (h("C"), 2),
                (h("D"), 3),
                (h("E"), 4),
                (h("F"), 5),
                (h("G"), 6),
            ],
            reports_to: vec![
                (0, h("C")),
                (1, h("S")),
                (3, h("E")),
                (5, h("D")),
                (6, h("Z")),
            ],
            ..Default::default()
        };
        let p = plan(facts, KeyList::UserIds, |x| x == h("S"));
        assert_eq!(
            p.flags,
            vec![
                0,
                0,
                0,
                UNKNOWN_REPORTS_TO,
                LOCAL,
                UNKNOWN_REPORTS_TO,
                UNKNOWN_REPORTS_TO
            ]
        );
        assert_eq!(p.dups.len(), 0);
    }

    #[test]
    fn a_manager_being_deleted_does_not_count() {
        let facts = Facts {
            flags: vec![DELETE, 0],
            row_of: vec![2, 3],
            user_ids: vec![(h("M"), 0), (h("A"), 1)],
            reports_to: vec![(1, h("M"))],
            ..Default::default()
        };
        let p = plan(facts, KeyList::UserIds, |_| false);
        assert_eq!(p.flags[1], UNKNOWN_REPORTS_TO);
    }
}
