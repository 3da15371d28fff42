//! What one cell says, before any field judges it: trimmed, a formula
//! guard that userdrop itself wrote taken off again, and the generic words
//! for yes and no. Shared by the header finder, the layouts and the row
//! judge; it must never know about fields, layouts or rows.

/// The first characters of a cell that a spreadsheet would run as a
/// formula (or that start one after a tab or CR).
pub const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Cells that a CSV written by userdrop neutralised (`'=x`) read back as
/// they were, so that `users export` imports back unchanged.
fn unneutralise(v: &str) -> &str {
    match v.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) => rest,
        _ => v,
    }
}

/// A cell as judged: trimmed, and un-neutralised when userdrop wrote it.
pub fn clean(raw: &str) -> &str {
    unneutralise(raw.trim())
}

pub fn parse_bool(v: &str) -> Option<bool> {
    const TRUE: &[&str] = &["true", "yes", "y", "1", "active", "enabled"];
    const FALSE: &[&str] = &["false", "no", "n", "0", "inactive", "disabled"];
    if TRUE.iter().any(|t| v.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|t| v.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}
