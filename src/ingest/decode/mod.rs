//! Turning the bytes of an uploaded file into CSV records, streaming.
//!
//! Two passes over the file:
//!
//! * [`sniff`] (pass 0) reads the whole file once to refuse what is not a CSV
//!   text file (Excel workbooks, PDFs, binary junk, empty files), to decide the
//!   encoding (BOM, else strict UTF-8, else the tenant's fallback; or the
//!   tenant's forced encoding, where a BOM still wins) and to find the
//!   delimiter (`sep=` line, configured, or sniffed from the header line).
//! * [`RecordReader`] reads the file again as many times as needed and yields
//!   every record (header included) with its spreadsheet row number: the row
//!   Excel would show, where the header is row 1 (blank lines count, a `sep=`
//!   line does not, a quoted multi-line cell is one row).
//!
//! The rooms: [`sniff`] (pass 0), `stream` (the byte-order mark and the
//! UTF-8 stream both passes read), `record` (records and row numbers).
//!
//! Memory stays bounded whatever the size of the file: one input chunk, one
//! decoded chunk, and one record's worth of field data.
//!
//! Decoding never substitutes U+FFFD: a malformed byte sequence in the
//! decided encoding (e.g. an unpaired surrogate in UTF-16) refuses the file
//! as `undecodable`. That is why this module drives `encoding_rs`'s decoder
//! directly (`decode_to_utf8_without_replacement`) rather than going through
//! `encoding_rs_io`, which always replaces malformed sequences.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

use super::error::{FileError, FileErrorCode};

mod record;
mod sniff;
mod stream;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use record::{Record, RecordReader};
use sniff::*;
pub use sniff::{sniff, sniff_bytes};
use stream::*;

/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;
/// How much of the start of the file the binary checks look at.
const HEAD: usize = 1024;
/// One record's field data may not exceed this (an opening quote that never
/// closes would otherwise turn the rest of a 1 GiB file into one cell).
const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

const SAVE_AS_CSV: &str = "open it in Excel and use File › Save As › CSV UTF-8";

/// Which byte separates fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// Sniffed from the header line: the most frequent of `,` `;` tab `|`
    /// outside double quotes (ties and none go to the first in that order).
    Auto,
    /// Always this byte (`,` `;` `|` tab `-` ...). A `sep=` line still wins.
    Fixed(u8),
}

/// The delimiter names a tenant's config and an upload's options accept, in
/// any case (seed systems write `SEMI_COLON`, `COMMA` ...).
pub const DELIMITER_NAMES: &[(&str, Delimiter)] = &[
    ("auto", Delimiter::Auto),
    ("comma", Delimiter::Fixed(b',')),
    ("semicolon", Delimiter::Fixed(b';')),
    ("pipe", Delimiter::Fixed(b'|')),
    ("tab", Delimiter::Fixed(b'\t')),
    ("hyphen", Delimiter::Fixed(b'-')),
];

impl Delimiter {
    /// The name as [`DELIMITER_NAMES`] spells it (`SEMI_COLON` is
    /// `semicolon`), for looking it up.
    pub fn canonical_name(name: &str) -> String {
        match name.trim().to_ascii_lowercase() {
            l if l == "semi_colon" => "semicolon".to_string(),
            l => l,
        }
    }

    /// A delimiter by name (any case) or as the character itself.
    pub fn from_name(name: &str) -> Option<Delimiter> {
        let canon = Delimiter::canonical_name(name);
        if let Some((_, d)) = DELIMITER_NAMES.iter().find(|(n, _)| *n == canon) {
            return Some(*d);
        }
        match name.as_bytes() {
            [b] if DELIMITER_NAMES
                .iter()
                .any(|(_, d)| *d == Delimiter::Fixed(*b)) =>
            {
                Some(Delimiter::Fixed(*b))
            }
            _ => None,
        }
    }
}

/// A tenant's decoding settings.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub delimiter: Delimiter,
    /// None = auto (BOM, else strict UTF-8, else `fallback`); Some(enc) = forced (a BOM still wins).
    pub forced: Option<&'static Encoding>,
    /// Used when the file has no BOM and is not valid UTF-8.
    pub fallback: &'static Encoding,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            delimiter: Delimiter::Auto,
            forced: None,
            fallback: WINDOWS_1252,
        }
    }
}

/// What pass 0 learned about the file: enough to open it again and again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub encoding: &'static Encoding,
    /// Report label: "utf-8", "utf-8-bom", "utf-16le", "utf-16be", or the encoding_rs name lower-cased (e.g. "windows-1252").
    pub label: String,
    pub delimiter: u8,
    /// True when a `sep=` line set the delimiter.
    pub sep_line: bool,
    /// Rows at the top that row numbers do not count: 1 for a table made
    /// from a JSON array, so a row's number is its object's place in the
    /// array (the header is row 0). Never set by sniffing.
    pub uncounted_rows: u64,
}
