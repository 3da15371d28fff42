//! Pass 2's reader: every record with its spreadsheet row number, read
//! again as often as needed, in bounded memory. It must never decide the
//! encoding or the delimiter: [`super::sniff`] did.

use super::*;

/// Reads the records of a sniffed file, the header first.
pub struct RecordReader<R> {
    src: Utf8Stream<R>,
    csv: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Line terminators in all input consumed so far (`\r\n` counts once).
    terms: u64,
    /// Of those, the ones inside the field data of the records read so far.
    embedded: u64,
    prev_cr: bool,
    /// The first record is a `sep=` line still to be dropped.
    skip_sep: bool,
    /// Rows not shown as rows (the `sep=` line, [`Sniffed::uncounted_rows`]).
    hidden_rows: u64,
    row: u64,
    done: bool,
    failed: Option<FileError>,
    /// A line break that is not the delimiter (see [`read_record_at_eof`]).
    probe: u8,
    /// Columns whose cells read as empty: secrets (passwords, hashes) that
    /// must never get past the reader.
    blank: Vec<bool>,
}

impl RecordReader<File> {
    pub fn open(path: &Path, sniffed: &Sniffed) -> Result<Self, FileError> {
        let file = File::open(path).map_err(|e| FileError::io(&e))?;
        Ok(RecordReader::with_chunk(file, sniffed, CHUNK))
    }
}

impl<'b> RecordReader<&'b [u8]> {
    pub fn from_bytes(bytes: &'b [u8], sniffed: &Sniffed) -> Self {
        RecordReader::with_chunk(bytes, sniffed, CHUNK)
    }
}

impl<R: Read> RecordReader<R> {
    pub(super) fn with_chunk(inner: R, sniffed: &Sniffed, chunk: usize) -> Self {
        let csv = csv_core::ReaderBuilder::new()
            .delimiter(sniffed.delimiter)
            .build();
        RecordReader {
            src: Utf8Stream::new(inner, sniffed.encoding, chunk),
            csv,
            out: vec![0; 16 * 1024],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            terms: 0,
            embedded: 0,
            prev_cr: false,
            skip_sep: sniffed.sep_line,
            hidden_rows: sniffed.uncounted_rows,
            row: 0,
            done: false,
            failed: None,
            probe: if sniffed.delimiter == b'\n' {
                b'\r'
            } else {
                b'\n'
            },
            blank: Vec::new(),
        }
    }

    /// From now on, the cells of these columns read as empty: a secret
    /// column's values never reach a row, a report or the store.
    pub fn blank_columns(&mut self, columns: &[usize]) {
        self.blank.clear();
        for &c in columns {
            if self.blank.len() <= c {
                self.blank.resize(c + 1, false);
            }
            self.blank[c] = true;
        }
    }

    /// The next record, or None at end of file. I/O errors → FileError::io(&e).
    /// Decoding problems discovered late (e.g. a malformed sequence in UTF-16) → FileErrorCode::Undecodable.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FileError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.done {
            return Ok(None);
        }
        match self.advance() {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        let ends = &self.ends[..self.ends_len];
        match std::str::from_utf8(&self.out[..self.out_len]) {
            Ok(text) if ends.iter().all(|&e| text.is_char_boundary(e)) => Ok(Some(Record {
                text,
                ends,
                row: self.row,
                blank: &self.blank,
            })),
            _ => {
                let e = FileError::new(
                    FileErrorCode::Undecodable,
                    format!(
                        "row {} is not valid {} text: save the file as CSV UTF-8",
                        self.row,
                        self.src.encoding.name()
                    ),
                );
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Parses the next record into `out`/`ends` and sets `row`; false at the
    /// end of the file.
    fn advance(&mut self) -> Result<bool, FileError> {
        use csv_core::ReadRecordResult as R;
        loop {
            self.out_len = 0;
            self.ends_len = 0;
            let terms_before = self.terms;
            let at_eof = loop {
                self.src.fill()?;
                let input = self.src.buffer();
                let eof = input.is_empty();
                let (res, nin, nout, nend) = if eof {
                    match read_record_at_eof(
                        &mut self.csv,
                        &mut self.ends[self.ends_len..],
                        self.probe,
                    ) {
                        Some(step) => step,
                        None => return Err(self.unclosed_quote()),
                    }
                } else {
                    self.csv.read_record(
                        input,
                        &mut self.out[self.out_len..],
                        &mut self.ends[self.ends_len..],
                    )
                };
                let consumed = &input[..nin];
                // Fast path: a record read whole in one call whose only
                // discarded bytes are its delimiters and its line break (plus
                // the \n of a previous \r\n) has no quotes and no blank
                // lines, so it consumed exactly one line break.
                let whole = self.out_len == 0 && self.ends_len == 0 && res == R::Record;
                let leading_lf = self.prev_cr && consumed.first() == Some(&b'\n');
                if whole && nin > 0 && nin - nout == nend + usize::from(leading_lf) {
                    self.terms += 1;
                    self.prev_cr = consumed[nin - 1] == b'\r';
                } else {
                    self.terms += count_terms(consumed, &mut self.prev_cr);
                }
                self.src.consume(nin);
                self.out_len += nout;
                self.ends_len += nend;
                match res {
                    R::InputEmpty => {}
                    R::OutputFull => {
                        if self.out.len() >= MAX_RECORD_BYTES {
                            return Err(self.too_long());
                        }
                        let len = self.out.len() * 2;
                        self.out.resize(len, 0);
                    }
                    R::OutputEndsFull => {
                        let len = self.ends.len() * 2;
                        self.ends.resize(len, 0);
                    }
                    R::Record => break eof,
                    R::End => return Ok(false),
                }
            };
            // A record that ended on a line break consumed that break; one
            // that ended at end of file did not.
            let own = u64::from(!at_eof);
            if self.terms - terms_before > own {
                let mut start = 0;
                for &end in &self.ends[..self.ends_len] {
                    self.embedded += count_terms(&self.out[start..end], &mut false);
                    start = end;
                }
            }
            // Rows are the breaks outside quotes before this record, plus one.
            self.row = self.terms - self.embedded + 1 - own - self.hidden_rows;
            if self.skip_sep {
                self.skip_sep = false;
                self.hidden_rows += 1;
                continue;
            }
            return Ok(true);
        }
    }

    /// The row of the record being read, as [`Record::row`] will report it:
    /// the line breaks consumed so far, less those inside field data (of
    /// earlier records, and of this one so far), plus one.
    fn pending_row(&self) -> u64 {
        let mut inside = 0;
        let mut start = 0;
        for &end in self.ends[..self.ends_len].iter().chain([&self.out_len]) {
            inside += count_terms(&self.out[start..end], &mut false);
            start = end;
        }
        self.terms - self.embedded - inside + 1 - self.hidden_rows
    }

    fn unclosed_quote(&self) -> FileError {
        FileError::new(
            FileErrorCode::Undecodable,
            format!(
                "the file ends inside a quoted cell that starts on row {} (a double quote \" that is never closed): the file may be cut short, or a quote is missing; check that row and send the whole file again",
                self.pending_row()
            ),
        )
    }

    fn too_long(&self) -> FileError {
        let row = self.pending_row();
        FileError::new(
            FileErrorCode::Undecodable,
            format!(
                "row {row} never ends: a cell opens a double quote that is never closed (or the row is over {} MB)",
                MAX_RECORD_BYTES / (1024 * 1024)
            ),
        )
    }
}

/// csv_core's last step at end of input (`read_record` with no input), except
/// that it returns None when the input ended inside a quoted field: an
/// opening quote at the start of a field never closed (inside it `""` is an
/// escaped quote; a quote elsewhere in a field is a literal character).
///
/// csv_core does not tell that state apart itself: at end of input it ends
/// an open quoted field like any other, which would silently turn the rest
/// of a truncated file into one cell. Its state is private, and its `Clone`
/// does not copy the whole DFA (0.1.13), so it is asked in place: it is fed
/// one line break `probe` (not the delimiter) with a one-byte output. Inside
/// a quoted field the break is field data, copied to the output. In every
/// other state nothing is copied: mid-record the break ends the record just
/// as the end of input would (same fields, same ends), between records it is
/// a blank line, so the end-of-input step then returns `End`. The probe byte
/// is not from the file, so the step reports nothing consumed.
#[cold]
#[inline(never)]
pub(super) fn read_record_at_eof(
    csv: &mut csv_core::Reader,
    ends: &mut [usize],
    probe: u8,
) -> Option<(csv_core::ReadRecordResult, usize, usize, usize)> {
    use csv_core::ReadRecordResult as R;
    let mut copied = [0u8; 1];
    let (res, _, nout, nend) = csv.read_record(&[probe], &mut copied, ends);
    if nout > 0 {
        return None;
    }
    Some(match res {
        R::InputEmpty => {
            debug_assert_eq!(nend, 0);
            csv.read_record(&[], &mut [], ends)
        }
        // A record ended by the break, or no room in `ends` yet (nothing
        // read: the caller grows it and comes back).
        _ => (res, 0, 0, nend),
    })
}

/// Counts line terminators (`\r\n`, lone `\r`, lone `\n` each once);
/// `prev_cr` carries a `\r` seen at the end of the previous slice.
#[inline]
pub(super) fn count_terms(s: &[u8], prev_cr: &mut bool) -> u64 {
    let mut n = 0u64;
    let mut p = *prev_cr;
    for &b in s {
        let cr = b == b'\r';
        n += u64::from(cr | ((b == b'\n') & !p));
        p = cr;
    }
    *prev_cr = p;
    n
}

/// One record; borrows the reader's buffers until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    text: &'a str,
    ends: &'a [usize],
    row: u64,
    /// Columns read as empty (see [`RecordReader::blank_columns`]).
    blank: &'a [bool],
}

impl<'a> Record<'a> {
    /// The spreadsheet row (the header is row 1 unless blank lines precede it).
    pub fn row(&self) -> u64 {
        self.row
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Zero fields (never yielded really).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)?;
        if self.blank.get(i) == Some(&true) {
            return Some("");
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let (text, ends, blank) = (self.text, self.ends, self.blank);
        (0..ends.len()).map(move |i| {
            if blank.get(i) == Some(&true) {
                return "";
            }
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &text[start..ends[i]]
        })
    }

    /// True when every field is empty after trimming spaces (such records are skipped by the caller, but still count as rows).
    pub fn is_blank(&self) -> bool {
        self.iter().all(|f| f.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use crate::ingest::decode::test_support::*;
    use crate::ingest::decode::*;

    // --- records ----------------------------------------------------------

    #[test]
    fn quoting() {
        let text =
            b"id,note\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"line1\r\nline2\"\n4,\"x\ny\"\n5,\"\"\n";
        assert_eq!(
            rows_of(text),
            vec![
                r(1, &["id", "note"]),
                r(2, &["1", "a,b"]),
                r(3, &["2", "say \"hi\""]),
                r(4, &["3", "line1\r\nline2"]),
                r(5, &["4", "x\ny"]),
                r(6, &["5", ""]),
            ]
        );
    }

    #[test]
    fn line_endings_and_missing_final_newline() {
        let want = vec![r(1, &["a", "b"]), r(2, &["1", "2"]), r(3, &["3", "4"])];
        for text in [
            &b"a,b\r\n1,2\r\n3,4\r\n"[..],
            b"a,b\n1,2\n3,4\n",
            b"a,b\r1,2\r3,4\r",
            b"a,b\r\n1,2\r\n3,4",
            b"a,b\n1,2\n3,4",
            b"a,b\r1,2\r3,4",
            b"a,b\r\n1,2\n3,4\r",
        ] {
            assert_eq!(rows_of(text), want, "{text:?}");
        }
    }

    #[test]
    fn values_are_not_trimmed_and_blank_records_are_yielded() {
        let rows = rows_of(b"a,b\n x , y \n,,\n  ,\t\n3,4\n");
        assert_eq!(
            rows,
            vec![
                r(1, &["a", "b"]),
                r(2, &[" x ", " y "]),
                r(3, &["", "", ""]),
                r(4, &["  ", "\t"]),
                r(5, &["3", "4"]),
            ]
        );
        let sniffed = sniff_bytes(b"a,b\n", &auto()).unwrap();
        let mut reader = RecordReader::from_bytes(b"a,b\n x ,y\n,,\n \t, \n", &sniffed);
        let mut blank = Vec::new();
        while let Some(rec) = reader.next_record().unwrap() {
            blank.push(rec.is_blank());
        }
        assert_eq!(blank, vec![false, false, true, true]);
    }

    #[test]
    fn record_accessors() {
        let sniffed = sniff_bytes(b"a,b,c\n", &auto()).unwrap();
        let mut reader = RecordReader::from_bytes("a,é,\"c,d\"\n".as_bytes(), &sniffed);
        let rec = reader.next_record().unwrap().unwrap();
        assert_eq!(rec.len(), 3);
        assert!(!rec.is_empty());
        assert_eq!(rec.get(0), Some("a"));
        assert_eq!(rec.get(1), Some("é"));
        assert_eq!(rec.get(2), Some("c,d"));
        assert_eq!(rec.get(3), None);
        assert_eq!(rec.iter().collect::<Vec<_>>(), vec!["a", "é", "c,d"]);
        assert!(reader.next_record().unwrap().is_none());
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn blanked_columns_read_as_empty_from_then_on() {
        let sniffed = sniff_bytes(b"a,b,c\n", &auto()).unwrap();
        let mut reader =
            RecordReader::from_bytes("id,password,x\n1,hunter2,y\n".as_bytes(), &sniffed);
        assert_eq!(
            reader.next_record().unwrap().unwrap().get(1),
            Some("password")
        );
        reader.blank_columns(&[1, 7]);
        let rec = reader.next_record().unwrap().unwrap();
        assert_eq!(
            (rec.get(0), rec.get(1), rec.get(2)),
            (Some("1"), Some(""), Some("y"))
        );
        assert_eq!(rec.iter().collect::<Vec<_>>(), vec!["1", "", "y"]);
        assert_eq!(rec.len(), 3);
    }

    // --- row numbers ------------------------------------------------------

    #[test]
    fn blank_lines_count_as_rows() {
        assert_eq!(
            rows_of(b"h\n1\n\n\n4\r\n\r\n6\r\r8"),
            vec![
                r(1, &["h"]),
                r(2, &["1"]),
                r(5, &["4"]),
                r(7, &["6"]),
                r(9, &["8"])
            ]
        );
        // Leading blank lines: the header is on row 3.
        assert_eq!(rows_of(b"\n\r\nh\n1\n"), vec![r(3, &["h"]), r(4, &["1"])]);
        assert_eq!(rows_of(b"\r\rh\r1\r"), vec![r(3, &["h"]), r(4, &["1"])]);
        // Trailing blank lines are not records.
        assert_eq!(rows_of(b"h\n1\n\n\n\n"), vec![r(1, &["h"]), r(2, &["1"])]);
    }

    #[test]
    fn multi_line_cell_is_one_row() {
        let rows = rows_of(b"id,note\n1,\"a\nb\r\nc\rd\"\n2,x\n\n3,\"\n\"\n4,y");
        assert_eq!(
            rows,
            vec![
                r(1, &["id", "note"]),
                r(2, &["1", "a\nb\r\nc\rd"]),
                r(3, &["2", "x"]),
                r(5, &["3", "\n"]),
                r(6, &["4", "y"]),
            ]
        );
        // Line breaks in two adjacent cells are not one \r\n.
        assert_eq!(
            rows_of(b"a,b\n\"x\r\",\"\ny\"\nz,w\n"),
            vec![r(1, &["a", "b"]), r(2, &["x\r", "\ny"]), r(3, &["z", "w"])]
        );
        // An unclosed quote at the end of the file is refused: see
        // `unclosed_quote_at_end_of_file_refuses_the_file`.
        let (rows, e) = unclosed(b"a\n\"x\ny\n");
        assert_eq!(rows, vec![r(1, &["a"])]);
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
    }

    // --- a quoted cell still open at end of file ----------------------------

    /// The rows read before the file is refused for a quote left open at its
    /// end, and that error; the same for every chunk size.
    fn unclosed_with(bytes: &[u8], opts: &DecodeOptions) -> (Rows, FileError) {
        let (rows, e) = read_until_error(bytes, opts, CHUNK);
        let e = e.unwrap_or_else(|| panic!("{bytes:?} should be refused, read {rows:?}"));
        assert_eq!(e.code, FileErrorCode::Undecodable);
        assert!(
            e.message.contains("ends inside a quoted cell"),
            "{}",
            e.message
        );
        for chunk in 1..=bytes.len() + 1 {
            assert_eq!(
                read_until_error(bytes, opts, chunk),
                (rows.clone(), Some(e.clone())),
                "chunk {chunk}"
            );
        }
        (rows, e)
    }

    fn unclosed(bytes: &[u8]) -> (Rows, FileError) {
        unclosed_with(bytes, &auto())
    }

    /// Reads `bytes` whole, for every chunk size, and returns its rows.
    fn closed(bytes: &[u8]) -> Rows {
        let rows = rows_of(bytes);
        for chunk in 1..=bytes.len() + 1 {
            assert_eq!(
                read_until_error(bytes, &auto(), chunk),
                (rows.clone(), None),
                "chunk {chunk}"
            );
        }
        rows
    }

    #[test]
    fn unclosed_quote_at_end_of_file_refuses_the_file() {
        let (rows, e) = unclosed(b"user_id,email,first_name\nU1,a@x.com,\"Ann\nU2,b@x.com,Bob\n");
        // The header came out, then the error: U2 never comes out as a record.
        assert_eq!(rows, vec![r(1, &["user_id", "email", "first_name"])]);
        assert_eq!(
            e.message,
            "the file ends inside a quoted cell that starts on row 2 (a double quote \" that is never closed): the file may be cut short, or a quote is missing; check that row and send the whole file again"
        );
        // Records before the broken one come out; without a final line break;
        // with the quote opening the last cell.
        let (rows, e) = unclosed(b"id,name\n1,a\n2,b\n3,\"c");
        assert_eq!(rows.len(), 3);
        assert!(e.message.contains("starts on row 4 "), "{}", e.message);
        let (rows, e) = unclosed(b"id,name\n1,\"");
        assert_eq!(rows.len(), 1);
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        // In the first cell of the record, in UTF-16, with a `sep=` line.
        let (_, e) = unclosed(&utf16("id;name\r\n\"1;a\r\n", true, true));
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        let (_, e) = unclosed(b"sep=;\nid;name\n1;\"a\n");
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
    }

    #[test]
    fn unclosed_quote_row_is_the_row_of_its_record() {
        // Blank lines count, a closed multi-line cell is one row, and the
        // line breaks inside the open cell do not move its row.
        let (rows, e) = unclosed(b"h,i\r\n\"a\r\nb\",c\r\n\r\n\r1,\"x\r\ny\nz\r\n");
        assert_eq!(rows, vec![r(1, &["h", "i"]), r(2, &["a\r\nb", "c"])]);
        assert!(e.message.contains("starts on row 5 "), "{}", e.message);
        // The open quote comes after a closed multi-line cell of the same
        // record: still the row where the record starts.
        let (rows, e) = unclosed(b"h,i\n\"a\nb\",\"c\nd\n");
        assert_eq!(rows, vec![r(1, &["h", "i"])]);
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        // A `\r` ending one cell and a `\n` starting the next are two line
        // breaks inside cells (not one `\r\n`), and neither starts a row.
        let (_, e) = unclosed(b"h,i\n\"x\r\",\"\ny\n");
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        let (rows, e) = unclosed(b"h,i\n\"x\r\",\"\ny\"\n1,\"");
        assert_eq!(rows[1], r(2, &["x\r", "\ny"]));
        assert!(e.message.contains("starts on row 3 "), "{}", e.message);
    }

    #[test]
    fn unclosed_quote_in_the_header_row() {
        let (rows, e) = unclosed(b"\"user_id,email\nU1,a@x.com\n");
        assert_eq!(rows, vec![]);
        assert!(e.message.contains("starts on row 1 "), "{}", e.message);
        let (rows, e) = unclosed(b"user_id,\"email\r\nU1,a@x.com");
        assert_eq!(rows, vec![]);
        assert!(e.message.contains("starts on row 1 "), "{}", e.message);
        // After blank lines; after a `sep=` line (not a row).
        let (_, e) = unclosed(b"\n\r\n\"h\n1\n");
        assert!(e.message.contains("starts on row 3 "), "{}", e.message);
        let (_, e) = unclosed(b"sep=,\r\n\"h\r\n1\r\n");
        assert!(e.message.contains("starts on row 1 "), "{}", e.message);
    }

    #[test]
    fn closed_multi_line_last_cell_without_final_newline_is_read() {
        assert_eq!(
            closed(b"id,note\n1,\"line1\nline2\""),
            vec![r(1, &["id", "note"]), r(2, &["1", "line1\nline2"])]
        );
        assert_eq!(
            closed(b"id,note\r\n1,\"a,\r\n\"\"b\"\"\r\n\""),
            vec![r(1, &["id", "note"]), r(2, &["1", "a,\r\n\"b\"\r\n"])]
        );
        // A closing quote right at the end; an empty quoted cell.
        assert_eq!(closed(b"a\n\"x\""), vec![r(1, &["a"]), r(2, &["x"])]);
        assert_eq!(
            closed(b"a,b\n1,\"\""),
            vec![r(1, &["a", "b"]), r(2, &["1", ""])]
        );
    }

    #[test]
    fn escaped_quote_at_end_of_file() {
        // `"abc"""` is abc" closed; `"abc""` is abc" still open.
        assert_eq!(
            closed(b"a\n\"abc\"\"\""),
            vec![r(1, &["a"]), r(2, &["abc\""])]
        );
        assert_eq!(
            closed(b"a\n\"abc\"\"\"\n"),
            vec![r(1, &["a"]), r(2, &["abc\""])]
        );
        let (rows, e) = unclosed(b"a\n\"abc\"\"");
        assert_eq!(rows, vec![r(1, &["a"])]);
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        let (_, e) = unclosed(b"a\n\"abc\"\"\n");
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        // `""""` is one quote, closed; `"""` is one quote, open.
        assert_eq!(closed(b"a\n\"\"\"\""), vec![r(1, &["a"]), r(2, &["\""])]);
        let (_, e) = unclosed(b"a\n\"\"\"");
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
    }

    #[test]
    fn unclosed_quote_with_other_delimiters() {
        let (rows, e) = unclosed_with(b"id-name\n1-\"a-b\n", &fixed(b'-'));
        assert_eq!(rows, vec![r(1, &["id", "name"])]);
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        let (_, e) = unclosed_with(b"id\tname\n1\t\"a\tb", &fixed(b'\t'));
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
        // A line break as the delimiter (nonsense, but it must not change
        // how the last record ends).
        for chunk in [1, 2, CHUNK] {
            let (rows, e) = read_until_error(b"h\nx", &fixed(b'\n'), chunk);
            assert_eq!((rows.len(), e), (1, None));
            assert_eq!(rows[0].1, vec!["h", "x"]);
        }
        let (rows, _) = unclosed_with(b"h\n\"x", &fixed(b'\n'));
        assert_eq!(rows, vec![]);
    }

    #[test]
    fn literal_quote_in_unquoted_cell_at_end_of_file() {
        // A quote that does not start a cell is just a character.
        assert_eq!(
            closed(b"name\nO\"Neil"),
            vec![r(1, &["name"]), r(2, &["O\"Neil"])]
        );
        assert_eq!(
            closed(b"name\nO\"Neil\n"),
            vec![r(1, &["name"]), r(2, &["O\"Neil"])]
        );
        assert_eq!(
            closed(b"name,x\nO\"Neil,5\"\n6,7\""),
            vec![
                r(1, &["name", "x"]),
                r(2, &["O\"Neil", "5\""]),
                r(3, &["6", "7\""])
            ]
        );
        // Text after a closing quote is unquoted too (as csv_core reads it).
        assert_eq!(closed(b"a\n\"x\"y\""), vec![r(1, &["a"]), r(2, &["xy\""])]);
        // But a quote at the start of a later cell opens it.
        let (_, e) = unclosed(b"name,x\nO\"Neil,\"5\n");
        assert!(e.message.contains("starts on row 2 "), "{}", e.message);
    }

    #[test]
    fn crlf_split_across_chunks() {
        let text = b"id,name\r\n1,a\r\n\r\n3,\"b\r\nc\"\r\n4,d\r\n";
        let want = vec![
            r(1, &["id", "name"]),
            r(2, &["1", "a"]),
            r(4, &["3", "b\r\nc"]),
            r(5, &["4", "d"]),
        ];
        let sniffed = sniff_bytes(text, &auto()).unwrap();
        // Every split position of every \r\n is met by some chunk size.
        for chunk in 1..=text.len() + 1 {
            assert_eq!(
                read_with(text, &sniffed, chunk).unwrap(),
                want,
                "chunk {chunk}"
            );
        }
        let utf16_text = utf16(std::str::from_utf8(text).unwrap(), true, true);
        let sniffed = sniff_bytes(&utf16_text, &auto()).unwrap();
        for chunk in 1..=12 {
            assert_eq!(
                read_with(&utf16_text, &sniffed, chunk).unwrap(),
                want,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn sep_line_is_not_a_row() {
        assert_eq!(
            rows_of(b"sep=,\r\n\r\nh\r\n1\r\n"),
            vec![r(2, &["h"]), r(3, &["1"])]
        );
    }

    #[test]
    fn runaway_quote_is_refused_not_buffered_forever() {
        let mut bytes = b"a\n\"".to_vec();
        bytes.resize(MAX_RECORD_BYTES + 10, b'x');
        let sniffed = sniff_bytes(&bytes, &auto()).unwrap();
        let mut reader = RecordReader::from_bytes(&bytes, &sniffed);
        assert!(reader.next_record().unwrap().is_some());
        let e = reader.next_record().err().unwrap();
        assert_eq!(e.code, FileErrorCode::Undecodable);
        assert!(e.message.contains("row 2"), "{}", e.message);
        // Its row is the row its record starts on, whatever the cell holds.
        let mut bytes = b"a\n\n\"".to_vec();
        while bytes.len() < MAX_RECORD_BYTES + 10 {
            bytes.extend_from_slice(b"xxxxxxx\n");
        }
        let mut reader = RecordReader::from_bytes(&bytes, &sniffed);
        assert!(reader.next_record().unwrap().is_some());
        let e = reader.next_record().err().unwrap();
        assert!(e.message.starts_with("row 3 never ends"), "{}", e.message);
    }

    #[test]
    fn files_on_disk() {
        let dir = std::env::temp_dir().join(format!("decode-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.csv");
        let mut body = b"sep=;\r\nname;city\r\n".to_vec();
        for i in 0..30_000 {
            body.extend_from_slice(format!("Jos\u{e9} {i};Z\u{fc}rich\r\n").as_bytes());
        }
        // Windows-1252 throughout: not UTF-8, so it falls back.
        let body: Vec<u8> = String::from_utf8(body)
            .unwrap()
            .chars()
            .map(|c| c as u32 as u8)
            .chain(*b"last;\xe9\r\n")
            .collect();
        std::fs::write(&path, &body).unwrap();
        let s = sniff(&path, &auto()).unwrap();
        assert_eq!(
            (s.label.as_str(), s.delimiter, s.sep_line),
            ("windows-1252", b';', true)
        );
        let mut reader = RecordReader::open(&path, &s).unwrap();
        let mut n = 0;
        let mut last = (0, String::new());
        while let Some(rec) = reader.next_record().unwrap() {
            n += 1;
            last = (rec.row(), rec.get(1).unwrap().to_string());
        }
        assert_eq!(n, 30_002);
        assert_eq!(last, (30_002, "é".to_string()));
        let missing = dir.join("missing.csv");
        assert_eq!(
            sniff(&missing, &auto()).unwrap_err().code,
            FileErrorCode::Unreadable
        );
        assert_eq!(
            RecordReader::open(&missing, &s).err().unwrap().code,
            FileErrorCode::Unreadable
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
