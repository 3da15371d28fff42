//! The failed-rows CSV: the original columns exactly as received, then `row`
//! and `error`, one line per failed row, in the upload's own dialect: its
//! delimiter, and UTF-8 with a byte order mark (what Excel needs to show
//! accents), whatever encoding the upload had. The same bytes go to
//! `results/*.errors.csv`, the mail attachment and `jobs show --failed-csv`;
//! the file imports back once fixed (the header finder ignores the trailing
//! `row` and `error` columns). Every CSV userdrop writes goes
//! through [`neutralise`], so a cell a spreadsheet would run as a formula
//! (`=`, `+`, `-`, `@`, tab, CR) is written with a leading `'`. This module
//! must never drop or reorder a failed row's cells.

use std::io::Write;

use crate::report::summary::JobReport;

/// The characters that make a spreadsheet treat a cell as a formula.
pub const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// `=cmd` → `'=cmd`; anything else unchanged.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_START) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// The UTF-8 byte order mark every failed-rows CSV starts with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The delimiter a job's file was read with (auto-detected or configured),
/// as its report says; `,` when the report has none (a refused file).
pub fn delimiter_of(report: &JobReport) -> u8 {
    match report.delimiter.as_deref().map(str::as_bytes) {
        Some(&[d]) if d.is_ascii() && !matches!(d, b'"' | b'\r' | b'\n') => d,
        _ => b',',
    }
}

/// One failed row: its spreadsheet row, its cells as received, and every
/// reason it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRow {
    pub row: u64,
    pub cells: Vec<String>,
    pub messages: Vec<String>,
}

/// Groups a job's row errors (ordered by row) into one line per row.
pub fn group(errors: &[crate::store::jobs::StoredError]) -> Vec<FailedRow> {
    let mut out: Vec<FailedRow> = Vec::new();
    for e in errors {
        match out.last_mut() {
            Some(last) if last.row == e.error.row => last.messages.push(e.error.message.clone()),
            _ => out.push(FailedRow {
                row: e.error.row,
                cells: e.cells.clone(),
                messages: vec![e.error.message.clone()],
            }),
        }
    }
    out
}

/// Writes the failed-rows CSV of a job: its columns, in its delimiter.
pub fn write_report<W: Write>(out: W, report: &JobReport, rows: &[FailedRow]) -> csv::Result<()> {
    write(out, delimiter_of(report), &report.columns, rows)
}

/// Writes the CSV with `delimiter`. Rows with more cells than the header (a
/// `wrong_field_count` row) widen the header with empty names, so `row` and
/// `error` always stay the last two columns.
pub fn write<W: Write>(
    out: W,
    delimiter: u8,
    columns: &[String],
    rows: &[FailedRow],
) -> csv::Result<()> {
    write_while(out, delimiter, columns, rows, width(columns, rows), |_| {
        true
    })
}

/// How many cells wide the CSV is before `row` and `error`.
pub fn width(columns: &[String], rows: &[FailedRow]) -> usize {
    rows.iter()
        .map(|r| r.cells.len())
        .chain([columns.len()])
        .max()
        .unwrap_or(0)
}

/// The CSV exactly as [`write`] makes it, cut at a row boundary so that it
/// holds at most `max_bytes` (the header is always kept). `rows` may be the
/// first rows only, with `width` that of all of them (see [`width`]), so that
/// the result is a prefix of the whole CSV. Returns the bytes and how many
/// rows they hold.
pub fn write_capped(
    delimiter: u8,
    columns: &[String],
    rows: &[FailedRow],
    width: usize,
    max_bytes: u64,
) -> (Vec<u8>, usize) {
    let mut buf = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    // Writing into memory cannot fail.
    let _ = write_while(&mut buf, delimiter, columns, rows, width, |len| {
        ends.push(len);
        ends.len() == 1 || len as u64 <= max_bytes
    });
    // ends[0] is the header; ends[i] the end of row i.
    let kept = ends.len().saturating_sub(1);
    let kept = if ends.last().is_some_and(|&e| e as u64 > max_bytes) && kept > 0 {
        buf.truncate(ends[kept - 1]);
        kept - 1
    } else {
        kept
    };
    (buf, kept)
}

/// The list of users a held sync would touch, as a CSV in the upload's
/// delimiter with a BOM (`key`, `first_name`, `last_name`, `email`), cut at
/// a row boundary to hold at most `max_bytes` (the header is always kept).
/// Returns the bytes and how many users they hold.
pub fn write_people(
    delimiter: u8,
    users: &[crate::store::users::Named],
    max_bytes: u64,
) -> (Vec<u8>, usize) {
    let mut buf = BOM.to_vec();
    let mut kept = 0;
    let line = |cells: [&str; 4]| {
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::new());
        // Writing into memory cannot fail.
        let _ = w.write_record(cells.map(|c| neutralise(c).into_owned()));
        w.into_inner().unwrap_or_default()
    };
    buf.extend(line(["key", "first_name", "last_name", "email"]));
    for u in users {
        let l = line([&u.key, &u.first_name, &u.last_name, &u.email]);
        if (buf.len() + l.len()) as u64 > max_bytes {
            break;
        }
        buf.extend(l);
        kept += 1;
    }
    (buf, kept)
}

/// Counts the bytes passed through to `inner`.
struct Counting<W> {
    inner: W,
    count: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.count.set(self.count.get() + n);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the header, then rows while `go_on` (given the bytes written so
/// far after each record) says so.
fn write_while<W: Write>(
    mut out: W,
    delimiter: u8,
    columns: &[String],
    rows: &[FailedRow],
    width: usize,
    mut go_on: impl FnMut(usize) -> bool,
) -> csv::Result<()> {
    out.write_all(BOM)?;
    let count = std::rc::Rc::new(std::cell::Cell::new(BOM.len()));
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_writer(Counting {
            inner: out,
            count: count.clone(),
        });
    let mut record: Vec<String> = Vec::with_capacity(width + 2);
    record.extend(columns.iter().map(|c| neutralise(c).into_owned()));
    record.resize(width, String::new());
    record.push("row".into());
    record.push("error".into());
    w.write_record(&record)?;
    w.flush()?;
    if go_on(count.get()) {
        for r in rows {
            record.clear();
            record.extend(r.cells.iter().map(|c| neutralise(c).into_owned()));
            record.resize(width, String::new());
            record.push(r.row.to_string());
            record.push(neutralise(&r.messages.join("; ")).into_owned());
            w.write_record(&record)?;
            w.flush()?;
            if !go_on(count.get()) {
                break;
            }
        }
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_everywhere() {
        let rows = vec![FailedRow {
            row: 3,
            cells: vec!["U1".into(), "=HYPERLINK(\"x\")".into(), "+1".into()],
            messages: vec!["first_name \"=HYPERLINK\" starts with '='".into()],
        }];
        let mut buf = Vec::new();
        write(
            &mut buf,
            b',',
            &["user_id".into(), "first_name".into(), "@x".into()],
            &rows,
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "\u{feff}user_id,first_name,'@x,row,error\nU1,\"'=HYPERLINK(\"\"x\"\")\",'+1,3,\"first_name \"\"=HYPERLINK\"\" starts with '='\"\n"
        );
    }

    #[test]
    fn capped_output_ends_at_a_row_boundary() {
        let rows: Vec<FailedRow> = (2..12)
            .map(|n| FailedRow {
                row: n,
                cells: vec![format!("U{n}"), "multi\nline".into()],
                messages: vec!["m".into()],
            })
            .collect();
        let cols = ["user_id".to_string(), "first_name".to_string()];
        let mut full = Vec::new();
        write(&mut full, b',', &cols, &rows).unwrap();
        let w = width(&cols, &rows);
        let (all, n) = write_capped(b',', &cols, &rows, w, full.len() as u64);
        assert_eq!((all.as_slice(), n), (full.as_slice(), 10));
        let (cut, n) = write_capped(b',', &cols, &rows, w, full.len() as u64 - 1);
        assert_eq!(n, 9);
        assert!(full.starts_with(&cut) && cut.ends_with(b"10,m\n"));
        // Given only the first rows, the same prefix.
        let (cut2, _) = write_capped(b',', &cols, &rows[..9], w, full.len() as u64 - 1);
        assert_eq!(cut2, cut);
        let (header_only, n) = write_capped(b',', &cols, &rows, w, 1);
        assert_eq!(n, 0);
        assert_eq!(header_only, b"\xEF\xBB\xBFuser_id,first_name,row,error\n");
    }

    #[test]
    fn ragged_rows_keep_row_and_error_last() {
        let rows = vec![
            FailedRow {
                row: 2,
                cells: vec!["a".into(), "b".into(), "c".into()],
                messages: vec!["m".into()],
            },
            FailedRow {
                row: 4,
                cells: vec!["a".into()],
                messages: vec!["n".into(), "o".into()],
            },
        ];
        let mut buf = Vec::new();
        write(&mut buf, b';', &["x".into(), "y".into()], &rows).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "\u{feff}x;y;;row;error\na;b;c;2;m\na;;;4;\"n; o\"\n"
        );
    }
}
