//! The two kinds of failure an imported file can meet, written for the
//! customer who has to fix the file: a file-level [`FileError`] refuses the
//! whole file (nothing is written), a [`RowError`] fails one spreadsheet row
//! and the rest of the file goes on. Codes are the stable strings of docs/formats.md#reason-codes;
//! they never change once published, because customers' automation matches
//! on them. This module must never format a message that needs the reader to
//! know userdrop's internals.

use std::fmt;

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub code: FileErrorCode,
    /// The field (or column) the problem is about, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl FileError {
    pub fn new(code: FileErrorCode, message: impl Into<String>) -> Self {
        FileError {
            code,
            field: None,
            message: message.into(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An I/O failure while reading the file. Not the customer's fault, but
    /// it still has to be reported as the reason the file did not go through.
    pub fn io(err: &std::io::Error) -> Self {
        FileError::new(
            FileErrorCode::Unreadable,
            format!("the file could not be read: {err}"),
        )
    }
}

/// File-level reason codes (docs/formats.md#file-level-codes), plus `unknown_column` for tenants that
/// set `unknown_columns = "error"`, and `unreadable` for I/O failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileErrorCode {
    EmptyFile,
    UnsupportedFileType,
    Undecodable,
    MissingRequiredColumn,
    AmbiguousHeader,
    UnknownColumn,
    TooManyDeletes,
    Unreadable,
}

impl FileErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FileErrorCode::EmptyFile => "empty_file",
            FileErrorCode::UnsupportedFileType => "unsupported_file_type",
            FileErrorCode::Undecodable => "undecodable",
            FileErrorCode::MissingRequiredColumn => "missing_required_column",
            FileErrorCode::AmbiguousHeader => "ambiguous_header",
            FileErrorCode::UnknownColumn => "unknown_column",
            FileErrorCode::TooManyDeletes => "too_many_deletes",
            FileErrorCode::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for FileErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one row failed. `row` is the spreadsheet row (the header is row 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {message}")]
pub struct RowError {
    pub row: u64,
    /// The row's key value as read (empty when missing).
    pub key: String,
    /// The field the problem is about; `None` for whole-row problems such as
    /// a wrong number of fields.
    pub field: Option<String>,
    /// A stable code: `wrong_field_count`, `missing_<field>`,
    /// `invalid_<field>`, `duplicate_<field>`, `field_too_long`,
    /// `formula_value`, `unknown_reports_to`, `wrong_tenant`,
    /// `already_exists`, `not_found`.
    pub code: String,
    pub message: String,
}

/// A customer's value as messages quote it: between “ and ”, as it is
/// (no escapes: the message may end up in a CSV cell, where `\"` would be
/// noise), with control characters shown as visible symbols (a tab as ␉,
/// a line break as ␊) and invisible ones as their code point, so that the
/// customer can find them.
pub fn quote(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len() + 6);
    out.push('“');
    for c in value.chars() {
        match c {
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('\u{2421}'),
            // Invisible or line-breaking characters: their code point.
            '\u{80}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{200b}'..='\u{200f}'
            | '\u{feff}' => {
                let _ = write!(out, "<U+{:04X}>", c as u32);
            }
            _ => out.push(c),
        }
    }
    out.push('”');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoted_values_carry_no_escapes_and_show_control_characters() {
        assert_eq!(quote("=HYPERLINK(\"x\")"), "“=HYPERLINK(\"x\")”");
        assert_eq!(quote("\tTabbed\r\n"), "“␉Tabbed␍␊”");
        assert_eq!(quote("Zoë"), "“Zoë”");
        assert_eq!(quote("a\u{200b}b"), "“a<U+200B>b”");
    }
}
