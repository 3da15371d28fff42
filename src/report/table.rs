//! The plain-text tables of `jobs` and `mail`: fixed-width columns two
//! spaces apart, the last column unpadded (it holds free text: a file name,
//! a subject). A value wider than its column is printed whole, never cut.
//! This module must never choose what a table shows; it only lays it out.

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
        let v = v.as_ref();
        if i > 0 {
            out.push_str("  ");
        }
        if i + 1 == columns.len() {
            out.push_str(v);
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
}
