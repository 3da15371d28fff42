//! Pass 1 of an import: every data row judged on its own, on two worker
//! threads, and the facts the cross-row rules need gathered in row order.
//! It must never write to the store.

use crate::ingest::decode::RecordReader;
use crate::ingest::error::FileError;
use crate::ingest::headers::HeaderMap;
use crate::ingest::plan::{self, Facts};
use crate::ingest::schema::{FieldKind, KeyField};
use crate::ingest::validate::{self, Validator};
use crate::store::users::hash96;

use super::BATCH;

/// Records of pass 1, copied out of the reader into one arena so that a
/// worker thread can judge them.
#[derive(Default)]
struct RawBatch {
    /// Index of the batch's first row among the file's data rows.
    first: u32,
    text: String,
    /// End offset of each cell in `text`.
    ends: Vec<u32>,
    /// Per record: spreadsheet row, offset of its first cell, its first
    /// entry in `ends`, its number of cells.
    records: Vec<(u64, u32, u32, u32)>,
}

/// A record of a [`RawBatch`].
struct ArenaRecord<'a> {
    row: u64,
    text: &'a str,
    start: u32,
    ends: &'a [u32],
}

impl<'a> validate::Fields<'a> for ArenaRecord<'a> {
    fn row(&self) -> u64 {
        self.row
    }
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 {
            self.start as usize
        } else {
            self.ends[i - 1] as usize
        };
        Some(&self.text[start..end])
    }
}

impl RawBatch {
    fn record(&self, n: usize) -> ArenaRecord<'_> {
        let (row, start, first_end, len) = self.records[n];
        ArenaRecord {
            row,
            text: &self.text,
            start,
            ends: &self.ends[first_end as usize..(first_end + len) as usize],
        }
    }
}

/// What the reading thread of pass 1 keeps: the facts, merged in row order,
/// and the batches and parts the workers hand back to be filled again
/// (memory touched for the first time costs more than the work done in it:
/// bench/README.md, "The ratio met").
#[derive(Default)]
struct Gather {
    facts: Facts,
    /// Parts whose per-row lists wait for an earlier batch, by first row.
    pending: std::collections::BTreeMap<u32, Facts>,
    spare_parts: Vec<Facts>,
    spare_batches: Vec<RawBatch>,
}

impl Gather {
    /// Takes a judged batch back: its hash lists are appended at once,
    /// its per-row lists and its managers in row order.
    fn back(&mut self, (mut batch, mut part): (RawBatch, Facts)) {
        let facts = &mut self.facts;
        facts.user_ids.append(&mut part.user_ids);
        facts.emails.append(&mut part.emails);
        facts.keys.append(&mut part.keys);
        self.pending.insert(batch.first, part);
        while let Some(mut next) = self.pending.remove(&(facts.flags.len() as u32)) {
            // In row order, as `graph::judge` walks it (sorting a million
            // entries that arrived nearly in order cost it 20 ms).
            facts.reports_to.append(&mut next.reports_to);
            facts.flags.append(&mut next.flags);
            facts.fingerprints.append(&mut next.fingerprints);
            facts.row_of.append(&mut next.row_of);
            self.spare_parts.push(next);
        }
        batch.text.clear();
        batch.ends.clear();
        batch.records.clear();
        self.spare_batches.push(batch);
    }
}

/// Pass 1: every data row judged on its own, and the facts the cross-row
/// rules need. A reading thread copies records into batches; two workers
/// take them from one queue (rows are independent here), so the pass takes
/// about half the wall time of one thread. The calling thread meanwhile
/// runs `alongside` (the import reads the stored users there: the store's
/// connection stays on its thread, and that scan no longer waits for the
/// file) and returns its result with the facts.
///
/// `fingerprints`: whether to fingerprint the valid rows, which only a
/// tenant with stored users needs (to find the rows identical to them); a
/// tenant's first file skips that hashing of every cell. `file_len`: the
/// file's size in bytes, from which the first batch tells how many rows to
/// make room for: lists grown by doubling to a million entries spent a
/// third of the pass copying into fresh memory.
pub(super) fn judge_all<R: std::io::Read + Send, T>(
    reader: &mut RecordReader<R>,
    map: &HeaderMap,
    schema: &crate::ingest::schema::Schema,
    v: &Validator<'_>,
    fingerprints: bool,
    file_len: u64,
    alongside: impl FnOnce() -> T,
) -> Result<(Facts, T), FileError> {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(RawBatch, Facts)>();
    // Both workers take the next batch from one queue, so neither waits
    // behind the other. Three busy threads share two cores: with room for
    // only a couple of batches, whichever thread the scheduler left out
    // stalled the others (pass 1 took a quarter longer than with 64, about
    // 5 MB of batches).
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(RawBatch, Facts)>(64);
    let work_rx = std::sync::Mutex::new(work_rx);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let done = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((batch, mut part))) = next else {
                    return;
                };
                judge_batch(&batch, map, schema, v, fingerprints, &mut part);
                if done.send((batch, part)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let reading =
            scope.spawn(move || read_all(reader, work_tx, done_rx, fingerprints, file_len));
        let beside = alongside();
        let facts = reading
            .join()
            .expect("pass 1's reading thread does not panic")?;
        Ok((facts, beside))
    })
}

/// The reading thread of pass 1: batches out to the workers, judged parts
/// back in row order.
fn read_all<R: std::io::Read>(
    reader: &mut RecordReader<R>,
    work_tx: std::sync::mpsc::SyncSender<(RawBatch, Facts)>,
    done_rx: std::sync::mpsc::Receiver<(RawBatch, Facts)>,
    fingerprints: bool,
    file_len: u64,
) -> Result<Facts, FileError> {
    let mut g = Gather::default();
    let mut batch = RawBatch::default();
    let mut rows = 0u32;
    let mut sent = 0usize;
    // Dropping `work_tx` on an error stops the workers.
    while let Some(rec) = reader.next_record()? {
        if rec.is_blank() {
            continue;
        }
        let start = batch.text.len() as u32;
        let first_end = batch.ends.len() as u32;
        for cell in rec.iter() {
            batch.text.push_str(cell);
            batch.ends.push(batch.text.len() as u32);
        }
        batch
            .records
            .push((rec.row(), start, first_end, rec.len() as u32));
        rows += 1;
        if batch.records.len() == BATCH {
            if sent == 0 {
                reserve(&mut g.facts, expected_rows(&batch, file_len), fingerprints);
            }
            while let Ok(done) = done_rx.try_recv() {
                g.back(done);
            }
            let mut next = g.spare_batches.pop().unwrap_or_else(|| RawBatch {
                first: 0,
                text: String::with_capacity(batch.text.capacity()),
                ends: Vec::with_capacity(batch.ends.capacity()),
                records: Vec::with_capacity(BATCH),
            });
            next.first = rows;
            let part = g.spare_parts.pop().unwrap_or_default();
            // A worker only stops taking work when this thread stopped
            // listening.
            let _ = work_tx.send((std::mem::replace(&mut batch, next), part));
            sent += 1;
        }
    }
    let part = g.spare_parts.pop().unwrap_or_default();
    let _ = work_tx.send((batch, part));
    drop(work_tx);
    for done in done_rx.iter() {
        g.back(done);
    }
    Ok(g.facts)
}

/// How many rows a file of `file_len` bytes holds, judged by its first
/// batch (each cell counted with a separator, each record with a line end),
/// with a tenth to spare.
fn expected_rows(batch: &RawBatch, file_len: u64) -> usize {
    let bytes = (batch.text.len() + batch.ends.len() + batch.records.len()).max(1) as u64;
    let rows = file_len.saturating_mul(batch.records.len() as u64) / bytes;
    usize::try_from(rows + rows / 10).unwrap_or(usize::MAX)
}

/// The most rows made room for ahead: a file whose first rows are short
/// and the rest long would otherwise claim far more address space than it
/// uses. Past it the lists grow as they fill.
const MAX_RESERVED_ROWS: usize = 1 << 22;

/// Room for `rows` rows in every per-row list, and in the hash lists
/// (memory not written to is never touched).
fn reserve(facts: &mut Facts, rows: usize, fingerprints: bool) {
    let rows = rows.min(MAX_RESERVED_ROWS);
    facts.flags.reserve(rows);
    facts.row_of.reserve(rows);
    facts.user_ids.reserve(rows);
    facts.emails.reserve(rows);
    facts.reports_to.reserve(rows);
    if fingerprints {
        facts.fingerprints.reserve(rows);
    }
}

/// Pass 1 for one batch, into `facts` (empty): indexes in the facts are the
/// file's row indexes.
fn judge_batch(
    batch: &RawBatch,
    map: &HeaderMap,
    schema: &crate::ingest::schema::Schema,
    v: &Validator<'_>,
    fingerprints: bool,
    facts: &mut Facts,
) {
    let col = |k: FieldKind| map.column(schema, k);
    let (uid_col, email_col) = (col(FieldKind::UserId), col(FieldKind::Email));
    for n in 0..batch.records.len() {
        let rec = batch.record(n);
        let i = batch.first + n as u32;
        facts.row_of.push(rec.row.min(u32::MAX as u64) as u32);
        let mut flags = 0;
        let mut fingerprint = 0;
        match v.check(&rec) {
            Ok(row) if row.delete => flags |= plan::DELETE,
            Ok(row) if fingerprints => fingerprint = row.fingerprint(),
            Ok(_) => {}
            Err(_) => flags |= plan::LOCAL,
        }
        facts.flags.push(flags);
        if fingerprints {
            facts.fingerprints.push(fingerprint);
        }
        // Duplicates and managers are judged on every row, valid or not, so
        // that both rows of a pair are reported. A row with the wrong number
        // of fields still makes another row a duplicate (its cells are as
        // the customer sees them), but names no manager.
        let ragged = validate::Fields::len(&rec) != map.columns.len();
        let raw = |c: Option<usize>| {
            c.and_then(|c| validate::Fields::get(&rec, c))
                .map(validate::clean)
                .unwrap_or("")
        };
        let uid = raw(uid_col);
        if !uid.is_empty() {
            facts.user_ids.push((hash96(uid), i));
        }
        let email = raw(email_col);
        if !email.is_empty() {
            facts.emails.push((hash96(&validate::lowercase(email)), i));
        }
        if schema.key == KeyField::MobileNumber {
            if let Some(key) = v.key_of(&rec) {
                facts.keys.push((hash96(&key), i));
            }
        }
        // A self-report is the validator's (`reports_to_cycle`): its manager
        // is not judged again, or the row would also be told its manager is
        // unknown.
        let manager = v.manager_key(&rec);
        if !manager.is_empty() && manager != uid && flags & plan::DELETE == 0 && !ragged {
            facts.reports_to.push((i, hash96(&manager)));
        }
    }
}
