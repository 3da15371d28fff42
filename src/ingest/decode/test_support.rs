//! What the decode tests share: reading a file whole at every chunk size,
//! and small constructors.

use super::*;

pub(super) type Rows = Vec<(u64, Vec<String>)>;

pub(super) fn auto() -> DecodeOptions {
    DecodeOptions::default()
}

pub(super) fn read_with(bytes: &[u8], sniffed: &Sniffed, chunk: usize) -> Result<Rows, FileError> {
    let mut reader = RecordReader::with_chunk(bytes, sniffed, chunk);
    let mut rows = Vec::new();
    while let Some(rec) = reader.next_record()? {
        rows.push((rec.row(), rec.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}

pub(super) fn read(bytes: &[u8], opts: &DecodeOptions) -> (Sniffed, Rows) {
    let sniffed = sniff_bytes(bytes, opts).expect("sniff");
    let rows = read_with(bytes, &sniffed, CHUNK).expect("read");
    // Whatever the chunk size, the same records and rows come out.
    for chunk in [1, 2, 3, 5, 7] {
        assert_eq!(
            sniff_reader(Cursor::new(bytes), opts, chunk).as_ref(),
            Ok(&sniffed)
        );
        assert_eq!(
            read_with(bytes, &sniffed, chunk).as_ref(),
            Ok(&rows),
            "chunk {chunk}"
        );
    }
    (sniffed, rows)
}

pub(super) fn rows_of(bytes: &[u8]) -> Rows {
    read(bytes, &auto()).1
}

pub(super) fn r(row: u64, fields: &[&str]) -> (u64, Vec<String>) {
    (row, fields.iter().map(|f| f.to_string()).collect())
}

pub(super) fn code(bytes: &[u8], opts: &DecodeOptions) -> FileErrorCode {
    sniff_bytes(bytes, opts)
        .expect_err("should be refused")
        .code
}

pub(super) fn err(bytes: &[u8]) -> FileError {
    sniff_bytes(bytes, &auto()).expect_err("should be refused")
}

pub(super) fn utf16(s: &str, le: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if le { b"\xFF\xFE" } else { b"\xFE\xFF" });
    }
    for u in s.encode_utf16() {
        out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    out
}

pub(super) fn fixed(b: u8) -> DecodeOptions {
    DecodeOptions {
        delimiter: Delimiter::Fixed(b),
        ..DecodeOptions::default()
    }
}

/// Reads `bytes` (sniffed with `opts`) up to the first error, with its
/// rows so far; checks that the error repeats.
pub(super) fn read_until_error(
    bytes: &[u8],
    opts: &DecodeOptions,
    chunk: usize,
) -> (Rows, Option<FileError>) {
    let sniffed = sniff_bytes(bytes, opts).expect("sniff");
    let mut reader = RecordReader::with_chunk(bytes, &sniffed, chunk);
    let mut rows = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(rec)) => rows.push((rec.row(), rec.iter().map(str::to_string).collect())),
            Ok(None) => return (rows, None),
            Err(e) => {
                assert_eq!(reader.next_record().err(), Some(e.clone()));
                assert_eq!(reader.next_record().err(), Some(e.clone()));
                return (rows, Some(e));
            }
        }
    }
}
