//! Properties of the whole decoder on arbitrary and CSV-like bytes.

use super::test_support::*;
use super::*;
use proptest::prelude::*;

// --- properties ---------------------------------------------------------

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether the input itself spells U+FFFD in its own encoding.
fn has_own_replacement_char(bytes: &[u8], label: &str) -> bool {
    let aligned = |pair: &[u8; 2]| bytes[2..].chunks_exact(2).any(|c| c == pair);
    match label {
        "utf-16le" => aligned(&[0xFD, 0xFF]),
        "utf-16be" => aligned(&[0xFF, 0xFD]),
        _ => contains(bytes, "\u{FFFD}".as_bytes()),
    }
}

fn arbitrary_input() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xFF\xFE".to_vec()),
        Just(b"\xFE\xFF".to_vec()),
        Just(b"sep=;\n".to_vec()),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            proptest::sample::select(b"ab,;|\t\"\r\n \xc3\xa9\x00\xd8\xdc".to_vec()),
            0..300
        ),
    ];
    (prefix, body).prop_map(|(mut p, b)| {
        p.extend(b);
        p
    })
}

fn csvish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            &b"a"[..],
            b"xyz",
            b",",
            b";",
            b"\"",
            b"\"\"",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            "é".as_bytes(),
            "😀".as_bytes(),
        ]),
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// The row of the record whose quoted cell is still open at the end of
/// `bytes`, worked out from the rules rather than by csv_core: a quote
/// opens a quoted cell only at the start of a cell, `""` inside one is a
/// quote, and any other quote is a character. Rows are the line breaks
/// outside quoted cells before the record, plus one (`\r\n` is one).
fn open_quote_row(bytes: &[u8], delim: u8) -> Option<u64> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Record,
        Cell,
        Unquoted,
        Quoted,
        Closed,
    }
    let (mut s, mut breaks, mut row, mut prev_cr) = (S::Record, 0u64, 0u64, false);
    for &b in bytes {
        if s != S::Quoted && (b == b'\r' || b == b'\n') {
            breaks += u64::from(!(b == b'\n' && prev_cr));
            s = S::Record;
        } else {
            if s == S::Record {
                row = breaks + 1;
                s = S::Cell;
            }
            s = match (s, b) {
                (S::Cell, b'"') => S::Quoted,
                (S::Cell | S::Unquoted | S::Closed, _) if b == delim => S::Cell,
                (S::Cell | S::Unquoted, _) => S::Unquoted,
                (S::Quoted, b'"') => S::Closed,
                (S::Closed, b'"') => S::Quoted,
                (S::Quoted, _) => S::Quoted,
                (S::Closed, _) => S::Unquoted,
                (S::Record, _) => unreachable!(),
            };
        }
        prev_cr = b == b'\r';
    }
    (s == S::Quoted).then_some(row)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A file is refused exactly when it ends inside a quoted cell, with
    /// the row that record starts on, after the records before it.
    #[test]
    fn open_quote_at_end_of_file_matches_the_rules(bytes in csvish()) {
        if let Ok(sniffed) = sniff_bytes(&bytes, &auto()) {
            let want = open_quote_row(&bytes, sniffed.delimiter);
            for chunk in [1, 2, 3, 7, CHUNK] {
                let (rows, e) = read_until_error(&bytes, &auto(), chunk);
                match want {
                    None => prop_assert_eq!(e, None),
                    Some(row) => {
                        let e = e.expect("refused");
                        prop_assert_eq!(e.code, FileErrorCode::Undecodable);
                        let at = format!("ends inside a quoted cell that starts on row {row} ");
                        prop_assert!(e.message.contains(&at), "{}: {}", at, e.message);
                        prop_assert!(rows.iter().all(|(r, _)| *r < row));
                    }
                }
            }
        }
    }

    #[test]
    fn never_panics_and_never_invents_replacement_chars(bytes in arbitrary_input()) {
        for opts in [auto(), fixed(b'-'), DecodeOptions { forced: Some(UTF_16LE), ..auto() }] {
            let Ok(sniffed) = sniff_bytes(&bytes, &opts) else { continue };
            let allowed = has_own_replacement_char(&bytes, &sniffed.label);
            let mut reader = RecordReader::from_bytes(&bytes, &sniffed);
            let mut last_row = 0;
            while let Ok(Some(rec)) = reader.next_record() {
                prop_assert!(rec.row() > last_row);
                last_row = rec.row();
                prop_assert!(!rec.is_empty());
                for field in rec.iter() {
                    prop_assert!(std::str::from_utf8(field.as_bytes()).is_ok());
                    prop_assert!(allowed || !field.contains('\u{FFFD}'), "{:?}", field);
                }
            }
        }
    }

    #[test]
    fn chunk_size_does_not_matter(bytes in csvish()) {
        let sniffed = sniff_bytes(&bytes, &auto());
        for chunk in [1, 2, 3, 4, 7] {
            let other = sniff_reader(Cursor::new(&bytes[..]), &auto(), chunk);
            prop_assert_eq!(&other, &sniffed);
        }
        if let Ok(sniffed) = sniffed {
            let want = read_with(&bytes, &sniffed, CHUNK);
            for chunk in [1, 2, 3, 4, 7] {
                prop_assert_eq!(&read_with(&bytes, &sniffed, chunk), &want);
            }
        }
    }

    /// Without quotes every non-empty line is one record on its own row.
    #[test]
    fn rows_are_line_numbers_without_quotes(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![&b"a"[..], b",", b" ", b"\r", b"\n", b"\r\n", "é".as_bytes()]),
            0..60,
        )
    ) {
        let bytes = parts.concat();
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\r' || bytes[i] == b'\n' {
                lines.push(&bytes[start..i]);
                i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            } else {
                i += 1;
            }
        }
        if start < bytes.len() {
            lines.push(&bytes[start..]);
        }
        let want: Rows = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(n, l)| {
                let s = std::str::from_utf8(l).unwrap();
                (n as u64 + 1, s.split(',').map(str::to_string).collect())
            })
            .collect();
        match sniff_bytes(&bytes, &fixed(b',')) {
            Err(e) => {
                prop_assert_eq!(e.code, FileErrorCode::EmptyFile);
                prop_assert!(bytes.iter().all(|b| b" \r\n".contains(b)));
            }
            Ok(sniffed) => {
                for chunk in [1, 3, CHUNK] {
                    prop_assert_eq!(read_with(&bytes, &sniffed, chunk).unwrap(), want.clone());
                }
            }
        }
    }
}
