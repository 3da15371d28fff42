//! The plain-text tables of `jobs` and `mail`: fixed-width columns two
//! spaces apart, the last column unpadded (it holds free text: a file name,
//! a subject). A value wider than its column is printed whole, never cut.
//! Control characters in a value (a file name with a newline or an escape
//! sequence) are printed escaped, never raw: a value cannot split a row or
//! drive the terminal. This module must never choose what a table shows; it
//! only lays it out.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (C0, DEL, C1) written as an escape:
/// `\n`, `\r`, `\t`, else `\u001b` (the form JSON reads back, so that the
/// log writer can use it on JSON lines too). Unchanged (borrowed) when it
/// has none.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// How a column's values sit in their width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column: its title (the header's cell) and layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub title: &'static str,
    pub width: usize,
    pub align: Align,
}

impl Column {
    pub const fn left(title: &'static str, width: usize) -> Column {
        Column {
            title,
            width,
            align: Align::Left,
        }
    }

    pub const fn right(title: &'static str, width: usize) -> Column {
        Column {
            title,
            width,
            align: Align::Right,
        }
    }
}

/// The header line: every column's title laid out as a value.
pub fn header(columns: &[Column]) -> String {
    let titles: Vec<&str> = columns.iter().map(|c| c.title).collect();
    row(columns, &titles)
}

/// One line of `cells`, one per column, in column order; the last column
/// (whatever its width says) is not padded.
pub fn row<S: AsRef<str>>(columns: &[Column], cells: &[S]) -> String {
    debug_assert_eq!(columns.len(), cells.len(), "one cell per column");
    let mut out = String::new();
    for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
        let v = escape_controls(v.as_ref());
        if i > 0 {
            out.push_str("  ");
        }
        if i + 1 == columns.len() {
            out.push_str(&v);
        } else {
            match c.align {
                Align::Left => out.push_str(&format!("{v:<w$}", w = c.width)),
                Align::Right => out.push_str(&format!("{v:>w$}", w = c.width)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 3] = [
        Column::right("id", 4),
        Column::left("name", 6),
        Column::left("note", 0),
    ];

    #[test]
    fn pads_all_but_the_last_column_and_never_cuts() {
        assert_eq!(header(&COLS), "  id  name    note");
        assert_eq!(
            row(&COLS, &["7", "ab", "free text"]),
            "   7  ab      free text"
        );
        assert_eq!(row(&COLS, &["12345", "abcdefgh", ""]), "12345  abcdefgh  ");
    }

    #[test]
    fn control_characters_in_a_cell_are_escaped_never_raw() {
        let line = row(
            &COLS,
            &["1", "a\tb", "evil\nname\r\u{1b}[31m\u{9b}2J\u{7f}.csv"],
        );
        assert_eq!(
            line,
            "   1  a\\tb    evil\\nname\\r\\u001b[31m\\u009b2J\\u007f.csv"
        );
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(matches!(escape_controls("plain ünïcode"), Cow::Borrowed(_)));
    }
}
