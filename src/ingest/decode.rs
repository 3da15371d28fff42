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
}

// ---------------------------------------------------------------------------
// Pass 0
// ---------------------------------------------------------------------------

/// Pass 0: reads the whole file once (streaming) to decide encoding, refuse
/// binary/empty files, and find the delimiter.
pub fn sniff(path: &Path, opts: &DecodeOptions) -> Result<Sniffed, FileError> {
    let file = File::open(path).map_err(|e| FileError::io(&e))?;
    sniff_reader(file, opts, CHUNK)
}

/// Same from bytes in memory (used by tests and fuzzing).
pub fn sniff_bytes(bytes: &[u8], opts: &DecodeOptions) -> Result<Sniffed, FileError> {
    sniff_reader(Cursor::new(bytes), opts, CHUNK)
}

fn sniff_reader<R: Read + Seek>(
    mut r: R,
    opts: &DecodeOptions,
    chunk: usize,
) -> Result<Sniffed, FileError> {
    let head = read_head(&mut r, HEAD)?;
    if head.is_empty() {
        return Err(empty_file());
    }
    check_signatures(&head)?;
    let looks_utf16 = looks_like_utf16_without_bom(&head);

    let bom = Bom::detect(&head);
    let (encoding, auto) = match (bom, opts.forced) {
        (Some(b), _) => (b.encoding(), false),
        (None, Some(enc)) => (enc, false),
        (None, None) => (UTF_8, true),
    };
    let label = match bom {
        Some(b) => b.label().to_string(),
        None => encoding.name().to_ascii_lowercase(),
    };

    rewind(&mut r)?;
    match scan(&mut r, encoding, auto, opts, chunk, looks_utf16) {
        Ok((delimiter, sep_line)) => Ok(Sniffed {
            encoding,
            label,
            delimiter,
            sep_line,
        }),
        Err(ScanError::NotUtf8) if auto => {
            rewind(&mut r)?;
            let fallback = opts.fallback;
            if !is_utf16(fallback) {
                // Decoding it all as the fallback would garble its UTF-8 parts.
                if let Some(line) = mixed_utf8_line(&mut r, chunk)? {
                    return Err(FileError::new(
                        FileErrorCode::Undecodable,
                        format!(
                            "the file mixes encodings: most of it is UTF-8 but line {line} is not (perhaps pasted from another file); save the whole file as CSV UTF-8"
                        ),
                    ));
                }
                rewind(&mut r)?;
            }
            match scan(&mut r, fallback, false, opts, chunk, looks_utf16) {
                Ok((delimiter, sep_line)) => Ok(Sniffed {
                    encoding: fallback,
                    label: fallback.name().to_ascii_lowercase(),
                    delimiter,
                    sep_line,
                }),
                Err(ScanError::NotUtf8) => Err(not_valid(fallback, None)),
                Err(ScanError::File(e)) => Err(e),
            }
        }
        Err(ScanError::NotUtf8) => Err(not_valid(encoding, None)),
        Err(ScanError::File(e)) => Err(e),
    }
}

enum ScanError {
    /// The stream is not valid UTF-8 (only reported while checking UTF-8).
    NotUtf8,
    File(FileError),
}

impl From<FileError> for ScanError {
    fn from(e: FileError) -> Self {
        ScanError::File(e)
    }
}

/// One full pass over the file decoded as `encoding` (a BOM still wins, as
/// in the reader). Returns (delimiter, sep_line).
fn scan<R: Read>(
    r: R,
    encoding: &'static Encoding,
    auto: bool,
    opts: &DecodeOptions,
    chunk: usize,
    looks_utf16: bool,
) -> Result<(u8, bool), ScanError> {
    let mut src = Utf8Stream::new(r, encoding, chunk);
    let mut validator = Utf8Validator::default();
    let mut scanner = HeaderScanner::default();
    // In auto mode, NUL bytes in a file whose fallback is UTF-16 just mean
    // "not UTF-8": the fallback pass decides.
    let nul_means_not_utf8 = auto && is_utf16(opts.fallback);
    loop {
        src.fill()?;
        let buf = src.buffer();
        if buf.is_empty() {
            break;
        }
        if buf.contains(&0) {
            if nul_means_not_utf8 {
                return Err(ScanError::NotUtf8);
            }
            return Err(ScanError::File(nul_bytes(looks_utf16 && src.bom.is_none())));
        }
        // Only UTF-8 is passed through undecoded; decoders check themselves.
        let passthrough = src.decoder.is_none();
        if passthrough && !validator.feed(buf) {
            return Err(ScanError::NotUtf8);
        }
        scanner.feed(buf);
        let n = buf.len();
        src.consume(n);
    }
    if !validator.finish() {
        return Err(ScanError::NotUtf8);
    }
    scanner.finish();
    if !scanner.found_header {
        return Err(ScanError::File(empty_file()));
    }
    let delimiter = match (scanner.sep, opts.delimiter) {
        (Some(sep), _) => sep,
        (None, Delimiter::Fixed(b)) => b,
        (None, Delimiter::Auto) => scanner.sniffed_delimiter(),
    };
    Ok((delimiter, scanner.sep.is_some()))
}

/// When the raw bytes hold valid UTF-8 multi-byte characters and also bytes
/// that are not UTF-8: the line (1-based) of the first such byte.
fn mixed_utf8_line<R: Read>(r: &mut R, chunk: usize) -> Result<Option<u64>, FileError> {
    let mut buf = vec![0u8; chunk.max(8)];
    let mut carry = 0usize;
    let mut lines = 1u64;
    let mut first_bad: Option<u64> = None;
    let mut multibyte = false;
    loop {
        let n = r.read(&mut buf[carry..]).map_err(|e| FileError::io(&e))?;
        let end = carry + n;
        let at_eof = n == 0;
        let data = &buf[..end];
        let mut pos = 0;
        while pos < data.len() {
            match std::str::from_utf8(&data[pos..]) {
                Ok(text) => {
                    multibyte |= !text.is_ascii();
                    if first_bad.is_none() {
                        lines += memchr_count(text.as_bytes());
                    }
                    pos = data.len();
                }
                Err(e) => {
                    let good = &data[pos..pos + e.valid_up_to()];
                    multibyte |= !good.is_ascii();
                    if first_bad.is_none() {
                        lines += memchr_count(good);
                    }
                    match e.error_len() {
                        Some(len) => {
                            first_bad.get_or_insert(lines);
                            pos += e.valid_up_to() + len;
                        }
                        // A character cut by the chunk end: finish it next read.
                        None if !at_eof => {
                            pos += e.valid_up_to();
                            break;
                        }
                        None => {
                            first_bad.get_or_insert(lines);
                            pos = data.len();
                        }
                    }
                }
            }
            if multibyte && first_bad.is_some() {
                return Ok(first_bad);
            }
        }
        if at_eof {
            return Ok(None);
        }
        buf.copy_within(pos..end, 0);
        carry = end - pos;
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn read_head<R: Read>(r: &mut R, max: usize) -> Result<Vec<u8>, FileError> {
    let mut head = Vec::with_capacity(max);
    r.take(max as u64)
        .read_to_end(&mut head)
        .map_err(|e| FileError::io(&e))?;
    Ok(head)
}

fn rewind<R: Seek>(r: &mut R) -> Result<(), FileError> {
    r.seek(SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| FileError::io(&e))
}

fn check_signatures(head: &[u8]) -> Result<(), FileError> {
    let unsupported = |msg: &str| Err(FileError::new(FileErrorCode::UnsupportedFileType, msg));
    if head.starts_with(b"PK\x03\x04") {
        return unsupported(&format!(
            "this is an Excel workbook (.xlsx), not a CSV file: {SAVE_AS_CSV}"
        ));
    }
    if head.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return unsupported(&format!(
            "this is an Excel 97-2003 workbook (.xls), not a CSV file: {SAVE_AS_CSV}"
        ));
    }
    if head.starts_with(b"%PDF-") {
        return unsupported(
            "this is a PDF document, not a CSV file: export the user list as CSV UTF-8 instead",
        );
    }
    Ok(())
}

/// Every other byte NUL in the first KB (at least 90% of one parity, at most
/// 10% of the other): UTF-16 text saved without its byte order mark.
fn looks_like_utf16_without_bom(head: &[u8]) -> bool {
    let n = head.len().min(HEAD) & !1;
    if n < 4 {
        return false;
    }
    let pairs = n / 2;
    let even = head[..n].iter().step_by(2).filter(|&&b| b == 0).count();
    let odd = head[1..n].iter().step_by(2).filter(|&&b| b == 0).count();
    let mostly = |c: usize| c * 10 >= pairs * 9;
    let few = |c: usize| c * 10 <= pairs;
    (mostly(odd) && few(even)) || (mostly(even) && few(odd))
}

fn is_utf16(enc: &'static Encoding) -> bool {
    enc == UTF_16LE || enc == UTF_16BE
}

fn empty_file() -> FileError {
    FileError::new(
        FileErrorCode::EmptyFile,
        "the file is empty: it needs a header row naming the columns, then one row per user",
    )
}

fn nul_bytes(utf16: bool) -> FileError {
    let msg = if utf16 {
        "the file looks like UTF-16 without a byte order mark; save it as CSV UTF-8"
    } else {
        "the file contains NUL bytes, so it is not a CSV text file: save the user list as CSV UTF-8"
    };
    FileError::new(FileErrorCode::Undecodable, msg)
}

fn not_valid(enc: &'static Encoding, at: Option<u64>) -> FileError {
    let at = match at {
        Some(at) => format!(" at byte {at}"),
        None => String::new(),
    };
    FileError::new(
        FileErrorCode::Undecodable,
        format!(
            "the file is not valid {} text (a broken character sequence{at}): save it as CSV UTF-8",
            enc.name()
        ),
    )
}

/// Streaming strict UTF-8 check that copes with a character split across
/// chunks.
#[derive(Default)]
struct Utf8Validator {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Validator {
    fn feed(&mut self, mut data: &[u8]) -> bool {
        if self.carry_len > 0 {
            let want = match self.carry[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (want - self.carry_len).min(data.len());
            let mut tmp = [0u8; 4];
            tmp[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            tmp[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            let len = self.carry_len + take;
            match std::str::from_utf8(&tmp[..len]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_none() && len < want => {
                    self.carry = tmp;
                    self.carry_len = len;
                    return true;
                }
                Err(_) => return false,
            }
            data = &data[take..];
        }
        match std::str::from_utf8(data) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                true
            }
            Err(_) => false,
        }
    }

    fn finish(&self) -> bool {
        self.carry_len == 0
    }
}

/// Finds the `sep=` line and the header line (the first line with something
/// other than whitespace, after any `sep=` line), and counts the candidate
/// delimiters of the header outside double quotes.
#[derive(Default)]
struct HeaderScanner {
    phase: Phase,
    first: [u8; 5],
    first_len: usize,
    sep: Option<u8>,
    in_quotes: bool,
    line_content: bool,
    counts: [u64; 4],
    found_header: bool,
}

#[derive(Default, PartialEq, Eq)]
enum Phase {
    #[default]
    FirstLine,
    Header,
    Done,
}

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

impl HeaderScanner {
    fn feed(&mut self, buf: &[u8]) {
        let mut i = 0;
        while self.phase == Phase::FirstLine && i < buf.len() {
            let b = buf[i];
            if b == b'\r' || b == b'\n' {
                if self.is_sep_line() {
                    self.sep = Some(self.first[4]);
                    self.phase = Phase::Header;
                    i += 1;
                } else {
                    self.replay_first();
                }
            } else if self.first_len == self.first.len() {
                self.replay_first();
            } else {
                self.first[self.first_len] = b;
                self.first_len += 1;
                i += 1;
            }
        }
        if self.phase == Phase::Header {
            self.header(&buf[i..]);
        }
    }

    fn finish(&mut self) {
        if self.phase == Phase::FirstLine {
            if self.is_sep_line() {
                self.sep = Some(self.first[4]);
                self.phase = Phase::Header;
            } else {
                self.replay_first();
            }
        }
        if self.phase == Phase::Header && self.line_content {
            self.found_header = true;
            self.phase = Phase::Done;
        }
    }

    fn is_sep_line(&self) -> bool {
        self.first_len == 5
            && self.first[..4].eq_ignore_ascii_case(b"sep=")
            && valid_sep_char(self.first[4])
    }

    fn replay_first(&mut self) {
        self.phase = Phase::Header;
        let first = self.first;
        self.header(&first[..self.first_len]);
    }

    fn header(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.phase != Phase::Header {
                return;
            }
            if b == b'"' {
                self.in_quotes = !self.in_quotes;
                self.line_content = true;
                continue;
            }
            let ws = matches!(b, b' ' | b'\t' | 0x0B | 0x0C);
            if self.in_quotes {
                self.line_content |= !ws && b != b'\r' && b != b'\n';
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    if self.line_content {
                        self.found_header = true;
                        self.phase = Phase::Done;
                    } else {
                        self.counts = [0; 4];
                    }
                }
                _ => {
                    if let Some(k) = CANDIDATES.iter().position(|&c| c == b) {
                        self.counts[k] += 1;
                    }
                    self.line_content |= !ws;
                }
            }
        }
    }

    fn sniffed_delimiter(&self) -> u8 {
        let mut best = 0;
        for k in 1..CANDIDATES.len() {
            if self.counts[k] > self.counts[best] {
                best = k;
            }
        }
        CANDIDATES[best]
    }
}

/// The X of a `sep=X` line: one printable ASCII byte or tab, not a quote.
fn valid_sep_char(b: u8) -> bool {
    b == b'\t' || ((0x20..0x7F).contains(&b) && b != b'"')
}

// ---------------------------------------------------------------------------
// Byte order marks and the decoded stream
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Bom {
    fn detect(head: &[u8]) -> Option<Bom> {
        if head.starts_with(b"\xEF\xBB\xBF") {
            Some(Bom::Utf8)
        } else if head.starts_with(b"\xFF\xFE") {
            Some(Bom::Utf16Le)
        } else if head.starts_with(b"\xFE\xFF") {
            Some(Bom::Utf16Be)
        } else {
            None
        }
    }

    fn len(self) -> usize {
        match self {
            Bom::Utf8 => 3,
            Bom::Utf16Le | Bom::Utf16Be => 2,
        }
    }

    fn encoding(self) -> &'static Encoding {
        match self {
            Bom::Utf8 => UTF_8,
            Bom::Utf16Le => UTF_16LE,
            Bom::Utf16Be => UTF_16BE,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Bom::Utf8 => "utf-8-bom",
            Bom::Utf16Le => "utf-16le",
            Bom::Utf16Be => "utf-16be",
        }
    }
}

/// The file as a stream of UTF-8 bytes, a chunk at a time: the BOM (if any)
/// decides the encoding and is skipped, otherwise `default` applies. UTF-8 is
/// passed through without copying (and without checking: the record reader
/// checks each record's text, the sniffer checks the whole stream); other
/// encodings go through `encoding_rs` without replacement.
struct Utf8Stream<R> {
    inner: R,
    chunk: usize,
    encoding: &'static Encoding,
    bom: Option<Bom>,
    started: bool,
    decoder: Option<Decoder>,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    raw_eof: bool,
    /// File offset of `raw[0]`.
    raw_offset: u64,
    text: Vec<u8>,
    text_pos: usize,
    text_len: usize,
    flushed: bool,
}

impl<R: Read> Utf8Stream<R> {
    fn new(inner: R, default: &'static Encoding, chunk: usize) -> Self {
        let chunk = chunk.max(1);
        Utf8Stream {
            inner,
            chunk,
            encoding: default,
            bom: None,
            started: false,
            decoder: None,
            raw: vec![0; chunk.max(4)],
            raw_pos: 0,
            raw_len: 0,
            raw_eof: false,
            raw_offset: 0,
            text: Vec::new(),
            text_pos: 0,
            text_len: 0,
            flushed: false,
        }
    }

    fn read_into(&mut self, at: usize, max: usize) -> Result<usize, FileError> {
        loop {
            match self.inner.read(&mut self.raw[at..at + max]) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::io(&e)),
            }
        }
    }

    fn start(&mut self) -> Result<(), FileError> {
        self.started = true;
        while self.raw_len < 3 {
            let room = self.raw.len() - self.raw_len;
            let n = self.read_into(self.raw_len, room)?;
            if n == 0 {
                self.raw_eof = true;
                break;
            }
            self.raw_len += n;
        }
        self.bom = Bom::detect(&self.raw[..self.raw_len]);
        if let Some(bom) = self.bom {
            self.encoding = bom.encoding();
            self.raw_pos = bom.len();
        }
        if self.encoding != UTF_8 {
            let decoder = self.encoding.new_decoder_without_bom_handling();
            let len = decoder
                .max_utf8_buffer_length_without_replacement(self.raw.len())
                .unwrap_or(self.raw.len() * 3)
                .max(64);
            self.text = vec![0; len];
            self.decoder = Some(decoder);
        }
        Ok(())
    }

    /// Makes sure [`Self::buffer`] holds the next UTF-8 bytes; it stays
    /// empty at end of file.
    fn fill(&mut self) -> Result<(), FileError> {
        if !self.started {
            self.start()?;
        }
        if self.decoder.is_none() {
            if self.raw_pos == self.raw_len && !self.raw_eof {
                self.raw_offset += self.raw_len as u64;
                let n = self.read_into(0, self.chunk)?;
                self.raw_pos = 0;
                self.raw_len = n;
                self.raw_eof = n == 0;
            }
            return Ok(());
        }
        while self.text_pos == self.text_len {
            if self.flushed {
                return Ok(());
            }
            if self.raw_pos == self.raw_len && !self.raw_eof {
                self.raw_offset += self.raw_len as u64;
                let n = self.read_into(0, self.chunk)?;
                self.raw_pos = 0;
                self.raw_len = n;
                self.raw_eof = n == 0;
            }
            let last = self.raw_eof;
            let decoder = self.decoder.as_mut().expect("decoder");
            let (res, read, written) = decoder.decode_to_utf8_without_replacement(
                &self.raw[self.raw_pos..self.raw_len],
                &mut self.text,
                last,
            );
            self.raw_pos += read;
            self.text_pos = 0;
            self.text_len = written;
            match res {
                DecoderResult::InputEmpty => self.flushed = last,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, extra) => {
                    let at = (self.raw_offset + self.raw_pos as u64)
                        .saturating_sub(bad as u64 + extra as u64);
                    return Err(not_valid(self.encoding, Some(at)));
                }
            }
        }
        Ok(())
    }

    fn buffer(&self) -> &[u8] {
        if self.decoder.is_some() {
            &self.text[self.text_pos..self.text_len]
        } else {
            &self.raw[self.raw_pos..self.raw_len]
        }
    }

    fn consume(&mut self, n: usize) {
        if self.decoder.is_some() {
            self.text_pos += n;
        } else {
            self.raw_pos += n;
        }
    }
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

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
    /// Rows not shown as rows (the `sep=` line).
    hidden_rows: u64,
    row: u64,
    done: bool,
    failed: Option<FileError>,
    /// A line break that is not the delimiter (see [`read_record_at_eof`]).
    probe: u8,
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
    fn with_chunk(inner: R, sniffed: &Sniffed, chunk: usize) -> Self {
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
            hidden_rows: 0,
            row: 0,
            done: false,
            failed: None,
            probe: if sniffed.delimiter == b'\n' {
                b'\r'
            } else {
                b'\n'
            },
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
                self.hidden_rows = 1;
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
fn read_record_at_eof(
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
fn count_terms(s: &[u8], prev_cr: &mut bool) -> u64 {
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
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let (text, ends) = (self.text, self.ends);
        (0..ends.len()).map(move |i| {
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
    use super::*;
    use proptest::prelude::*;

    type Rows = Vec<(u64, Vec<String>)>;

    fn auto() -> DecodeOptions {
        DecodeOptions::default()
    }

    fn read_with(bytes: &[u8], sniffed: &Sniffed, chunk: usize) -> Result<Rows, FileError> {
        let mut reader = RecordReader::with_chunk(bytes, sniffed, chunk);
        let mut rows = Vec::new();
        while let Some(rec) = reader.next_record()? {
            rows.push((rec.row(), rec.iter().map(str::to_string).collect()));
        }
        Ok(rows)
    }

    fn read(bytes: &[u8], opts: &DecodeOptions) -> (Sniffed, Rows) {
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

    fn rows_of(bytes: &[u8]) -> Rows {
        read(bytes, &auto()).1
    }

    fn r(row: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (row, fields.iter().map(|f| f.to_string()).collect())
    }

    fn code(bytes: &[u8], opts: &DecodeOptions) -> FileErrorCode {
        sniff_bytes(bytes, opts)
            .expect_err("should be refused")
            .code
    }

    fn err(bytes: &[u8]) -> FileError {
        sniff_bytes(bytes, &auto()).expect_err("should be refused")
    }

    fn utf16(s: &str, le: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(if le { b"\xFF\xFE" } else { b"\xFE\xFF" });
        }
        for u in s.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    fn fixed(b: u8) -> DecodeOptions {
        DecodeOptions {
            delimiter: Delimiter::Fixed(b),
            ..DecodeOptions::default()
        }
    }

    // --- encodings -------------------------------------------------------

    #[test]
    fn utf8_bom_is_skipped_and_labelled() {
        let (s, rows) = read(b"\xEF\xBB\xBFname,email\nJos\xC3\xA9,j@x.io\n", &auto());
        assert_eq!(s.label, "utf-8-bom");
        assert_eq!(s.encoding, UTF_8);
        assert_eq!(
            rows,
            vec![r(1, &["name", "email"]), r(2, &["José", "j@x.io"])]
        );
    }

    #[test]
    fn utf8_without_bom_with_accents() {
        let (s, rows) = read("prénom;nom\nJosé;Müller-Łukasz 日本\n".as_bytes(), &auto());
        assert_eq!(s.label, "utf-8");
        assert_eq!(s.delimiter, b';');
        assert_eq!(rows[1], r(2, &["José", "Müller-Łukasz 日本"]));
    }

    #[test]
    fn windows_1252_fallback() {
        let (s, rows) = read(b"name,city\nJos\xe9,\x80 Z\xfcrich\n", &auto());
        assert_eq!(s.encoding, WINDOWS_1252);
        assert_eq!(s.label, "windows-1252");
        assert_eq!(rows[1], r(2, &["José", "€ Zürich"]));
    }

    #[test]
    fn invalid_utf8_late_in_the_file_still_falls_back() {
        let mut bytes = b"name\n".to_vec();
        for _ in 0..20_000 {
            bytes.extend_from_slice(b"Zoe\n");
        }
        bytes.extend_from_slice(b"Jos\xe9\n");
        let s = sniff_bytes(&bytes, &auto()).unwrap();
        assert_eq!(s.label, "windows-1252");
        // UTF-8 text with one stray Windows-1252 byte is refused, not garbled.
        let mut mixed = b"name\n".to_vec();
        for _ in 0..20_000 {
            mixed.extend_from_slice("Jos\u{e9}\n".as_bytes());
        }
        mixed.extend_from_slice(b"Jos\xe9\n");
        for chunk in [3, CHUNK] {
            let e = sniff_reader(Cursor::new(&mixed), &auto(), chunk).unwrap_err();
            assert_eq!(e.code, FileErrorCode::Undecodable);
            assert!(e.message.contains("line 20002 is not"), "{}", e.message);
        }
        // A character split across chunks is still valid UTF-8.
        let good = "name\nJosé 日本 😀\n".as_bytes();
        for chunk in 1..8 {
            let s = sniff_reader(Cursor::new(good), &auto(), chunk).unwrap();
            assert_eq!(s.label, "utf-8", "chunk {chunk}");
        }
        // ... and a truncated one at the end is not.
        let s = sniff_bytes(b"name\nJos\xc3", &auto()).unwrap();
        assert_eq!(s.label, "windows-1252");
    }

    #[test]
    fn configured_fallback() {
        let latin2 = Encoding::for_label(b"iso-8859-2").unwrap();
        let opts = DecodeOptions {
            fallback: latin2,
            ..auto()
        };
        let (s, rows) = read(b"name\n\xb1\xbf\n", &opts);
        assert_eq!(s.label, "iso-8859-2");
        assert_eq!(rows[1], r(2, &["ąż"]));
        // Valid UTF-8 still wins over the fallback.
        let (s, _) = read("name\nż\n".as_bytes(), &opts);
        assert_eq!(s.label, "utf-8");
    }

    #[test]
    fn forced_encoding_skips_the_utf8_check_but_not_the_bom() {
        let forced = Encoding::for_label(b"windows-1252");
        let opts = DecodeOptions { forced, ..auto() };
        // Valid UTF-8 bytes, read as windows-1252 because the tenant says so.
        let (s, rows) = read(b"name\n\xc3\xa9\n", &opts);
        assert_eq!(s.label, "windows-1252");
        assert_eq!(rows[1], r(2, &["Ã©"]));
        // A BOM still wins.
        let (s, rows) = read(b"\xEF\xBB\xBFname\n\xc3\xa9\n", &opts);
        assert_eq!(s.label, "utf-8-bom");
        assert_eq!(rows[1], r(2, &["é"]));
        let (s, rows) = read(&utf16("name\né\n", true, true), &opts);
        assert_eq!(s.label, "utf-16le");
        assert_eq!(rows[1], r(2, &["é"]));
    }

    #[test]
    fn forced_utf8_is_strict() {
        let opts = DecodeOptions {
            forced: Some(UTF_8),
            ..auto()
        };
        assert_eq!(code(b"name\nJos\xe9\n", &opts), FileErrorCode::Undecodable);
        let (s, _) = read(b"name\nJos\xc3\xa9\n", &opts);
        assert_eq!(s.label, "utf-8");
        // A UTF-8 BOM decides UTF-8 too: no fallback behind it.
        assert_eq!(
            code(b"\xEF\xBB\xBFname\nJos\xe9\n", &auto()),
            FileErrorCode::Undecodable
        );
    }

    #[test]
    fn forced_utf16_without_bom() {
        let opts = DecodeOptions {
            forced: Encoding::for_label(b"utf-16be"),
            ..auto()
        };
        let (s, rows) = read(&utf16("a;b\nÄ;😀\n", false, false), &opts);
        assert_eq!(s.label, "utf-16be");
        assert_eq!(rows, vec![r(1, &["a", "b"]), r(2, &["Ä", "😀"])]);
    }

    #[test]
    fn utf16_le_and_be_with_bom_round_trip() {
        let text = "user_id,name,city\r\nU1,\"Łukasz, Jr\",Zürich\r\nU2,日本 😀,Köln\r\n";
        for (le, label) in [(true, "utf-16le"), (false, "utf-16be")] {
            let (s, rows) = read(&utf16(text, le, true), &auto());
            assert_eq!(s.label, label);
            assert_eq!(s.delimiter, b',');
            assert_eq!(
                rows,
                vec![
                    r(1, &["user_id", "name", "city"]),
                    r(2, &["U1", "Łukasz, Jr", "Zürich"]),
                    r(3, &["U2", "日本 😀", "Köln"]),
                ]
            );
        }
    }

    #[test]
    fn utf16_unpaired_surrogate_is_undecodable() {
        // "a\n" then a lone high surrogate, then "b".
        let le = b"\xFF\xFEa\x00\n\x00\x00\xD8b\x00";
        assert_eq!(code(le, &auto()), FileErrorCode::Undecodable);
        let be = b"\xFE\xFF\x00a\x00\n\xDC\x00\x00b";
        assert_eq!(code(be, &auto()), FileErrorCode::Undecodable);
        // An odd trailing byte too.
        assert_eq!(
            code(b"\xFF\xFEa\x00\n\x00b", &auto()),
            FileErrorCode::Undecodable
        );
    }

    #[test]
    fn utf16_problem_found_late_by_the_reader_is_undecodable_and_sticky() {
        let sniffed = Sniffed {
            encoding: UTF_16LE,
            label: "utf-16le".into(),
            delimiter: b',',
            sep_line: false,
        };
        let mut bytes = utf16("h\nx\n", true, true);
        bytes.extend_from_slice(b"\x00\xDC");
        let mut reader = RecordReader::with_chunk(&bytes[..], &sniffed, 2);
        assert_eq!(reader.next_record().unwrap().unwrap().get(0), Some("h"));
        assert_eq!(reader.next_record().unwrap().unwrap().get(0), Some("x"));
        let e = reader.next_record().err().unwrap();
        assert_eq!(e.code, FileErrorCode::Undecodable);
        assert_eq!(reader.next_record().err().unwrap(), e);
    }

    #[test]
    fn reader_refuses_invalid_utf8_it_was_not_told_about() {
        let sniffed = sniff_bytes(b"a,b\n1,2\n", &auto()).unwrap();
        let mut reader = RecordReader::from_bytes(b"a,b\n1,\xe9\n", &sniffed);
        assert!(reader.next_record().unwrap().is_some());
        let e = reader.next_record().err().unwrap();
        assert_eq!(e.code, FileErrorCode::Undecodable);
        assert!(e.message.contains("row 2"), "{}", e.message);
        // Field boundaries inside a character: each field is invalid alone
        // even though the concatenation is valid.
        let mut reader = RecordReader::from_bytes(b"\xe2\x82,\xac\n", &sniffed);
        assert_eq!(
            reader.next_record().err().unwrap().code,
            FileErrorCode::Undecodable
        );
    }

    // --- refused files ---------------------------------------------------

    #[test]
    fn workbooks_and_pdfs_are_unsupported() {
        let e = err(b"PK\x03\x04\x14\x00\x06\x00rest of a zip");
        assert_eq!(e.code, FileErrorCode::UnsupportedFileType);
        assert!(
            e.message.contains(".xlsx") && e.message.contains("CSV UTF-8"),
            "{}",
            e.message
        );
        let e = err(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00\x00");
        assert_eq!(e.code, FileErrorCode::UnsupportedFileType);
        assert!(
            e.message.contains("97-2003") && e.message.contains(".xls)"),
            "{}",
            e.message
        );
        let e = err(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
        assert_eq!(e.code, FileErrorCode::UnsupportedFileType);
        assert!(e.message.contains("PDF"), "{}", e.message);
        // Whatever the tenant forces.
        let opts = DecodeOptions {
            forced: Some(WINDOWS_1252),
            ..fixed(b';')
        };
        assert_eq!(
            code(b"PK\x03\x04", &opts),
            FileErrorCode::UnsupportedFileType
        );
    }

    #[test]
    fn nul_bytes_are_undecodable() {
        let e = err(b"name,email\nbob,b\x00b@x.io\n");
        assert_eq!(e.code, FileErrorCode::Undecodable);
        assert!(!e.message.contains("UTF-16"), "{}", e.message);
        let e = err(b"\x00\x01\x02\x03binary\xff\xfe");
        assert_eq!(e.code, FileErrorCode::Undecodable);
        // Also when the NUL is far from the start.
        let mut big = b"a,b\n".repeat(50_000);
        big.push(0);
        assert_eq!(err(&big).code, FileErrorCode::Undecodable);
    }

    #[test]
    fn utf16_without_bom_is_recognised() {
        for le in [true, false] {
            for text in ["name,email\nbob,b@x.io\n", "name,city\nJosé,Zürich\n"] {
                let e = err(&utf16(text, le, false));
                assert_eq!(e.code, FileErrorCode::Undecodable);
                assert!(
                    e.message.contains("UTF-16 without a byte order mark"),
                    "{}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn empty_files() {
        for bytes in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"\xFF\xFE",
            b"\xFE\xFF",
            b"\n",
            b" \r\n\t\n\r\r  ",
            b"\xEF\xBB\xBF\r\n",
            b"sep=;\n",
            b"sep=;",
            b"sep=,\r\n\r\n",
        ] {
            let e = sniff_bytes(bytes, &auto()).expect_err("empty");
            assert_eq!(e.code, FileErrorCode::EmptyFile, "{bytes:?}");
            assert!(e
                .message
                .starts_with("the file is empty: it needs a header row"));
        }
        assert_eq!(
            code(&utf16(" \r\n", true, true), &auto()),
            FileErrorCode::EmptyFile
        );
    }

    #[test]
    fn header_only_is_valid() {
        assert_eq!(rows_of(b"name,email\n"), vec![r(1, &["name", "email"])]);
        assert_eq!(rows_of(b"name,email"), vec![r(1, &["name", "email"])]);
        assert_eq!(rows_of(b"\xEF\xBB\xBFname\r\n\r\n"), vec![r(1, &["name"])]);
    }

    // --- delimiters -------------------------------------------------------

    #[test]
    fn delimiter_sniffing() {
        for (text, want) in [
            ("a,b,c\n1,2,3\n", b','),
            ("a;b;c\n1;2;3\n", b';'),
            ("a\tb\tc\n1\t2\t3\n", b'\t'),
            ("a|b|c\n1|2|3\n", b'|'),
            // Most frequent wins.
            ("a;b;c,d\n", b';'),
            ("a|b|c;d\n", b'|'),
            // Ties and none go to the first in , ; \t | order.
            ("a;b,c\n", b','),
            ("a|b\tc\n", b'\t'),
            ("a|b;c\n", b';'),
            ("name\nbob\n", b','),
            // Hyphen is never sniffed.
            ("first-name-last-name\n", b','),
            // Only the header line counts.
            ("a;b\n1,2,3,4,5\n", b';'),
            // Blank lines before the header do not.
            ("\n\t\t\n a|b\n", b'|'),
        ] {
            let s = sniff_bytes(text.as_bytes(), &auto()).unwrap();
            assert_eq!(s.delimiter as char, want as char, "{text:?}");
            assert!(!s.sep_line);
        }
    }

    #[test]
    fn delimiters_inside_quotes_do_not_count() {
        let text = b"\"last, first, middle\";\"e,mail\";id\n\"Doe, John\";j@x.io;1\n";
        let (s, rows) = read(text, &auto());
        assert_eq!(s.delimiter, b';');
        assert_eq!(rows[0], r(1, &["last, first, middle", "e,mail", "id"]));
        assert_eq!(rows[1], r(2, &["Doe, John", "j@x.io", "1"]));
        // A quoted header cell spanning lines is still the header.
        let (s, rows) = read(b"\"a\nb,c,d\";e\n1;2\n", &auto());
        assert_eq!(s.delimiter, b';');
        assert_eq!(rows, vec![r(1, &["a\nb,c,d", "e"]), r(2, &["1", "2"])]);
    }

    #[test]
    fn configured_delimiter_is_used() {
        let (s, rows) = read(b"a,b;c\n1,2;3\n", &fixed(b';'));
        assert_eq!(s.delimiter, b';');
        assert_eq!(rows, vec![r(1, &["a,b", "c"]), r(2, &["1,2", "3"])]);
    }

    #[test]
    fn hyphen_delimiter() {
        let (s, rows) = read(b"user_id-email\nU1-a@x.io\n\"U-2\"-b@x.io\n", &fixed(b'-'));
        assert_eq!(s.delimiter, b'-');
        assert_eq!(
            rows,
            vec![
                r(1, &["user_id", "email"]),
                r(2, &["U1", "a@x.io"]),
                r(3, &["U-2", "b@x.io"])
            ]
        );
    }

    #[test]
    fn sep_lines() {
        let (s, rows) = read(b"sep=;\na;b,c\n1;2,3\n", &auto());
        assert_eq!((s.delimiter, s.sep_line), (b';', true));
        assert_eq!(rows, vec![r(1, &["a", "b,c"]), r(2, &["1", "2,3"])]);

        let (s, rows) = read(b"SEP=|\r\na,b|c\r\n\r\n1,2|3\r\n", &auto());
        assert_eq!((s.delimiter, s.sep_line), (b'|', true));
        assert_eq!(rows, vec![r(1, &["a,b", "c"]), r(3, &["1,2", "3"])]);

        // Overrides a configured delimiter too; after a BOM; with a tab.
        let (s, rows) = read(b"\xEF\xBB\xBFSep=\t\ra\tb\r1\t2", &fixed(b','));
        assert_eq!((s.delimiter, s.sep_line), (b'\t', true));
        assert_eq!(rows, vec![r(1, &["a", "b"]), r(2, &["1", "2"])]);

        // In UTF-16 too.
        let (s, rows) = read(&utf16("sep=;\r\nä;b\r\n", true, true), &auto());
        assert_eq!((s.delimiter, s.sep_line), (b';', true));
        assert_eq!(rows, vec![r(1, &["ä", "b"])]);

        // Not sep lines: more after X, nothing after '=', or not first.
        for text in [
            &b"sep=;;\na\n"[..],
            b"sep=\na\n",
            b"a\nsep=;\n",
            b"sep= ;\n",
            b"\nsep=;\na;b\n",
        ] {
            let s = sniff_bytes(text, &auto()).unwrap();
            assert!(!s.sep_line, "{text:?}");
        }
    }

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

    /// Reads `bytes` (sniffed with `opts`) up to the first error, with its
    /// rows so far; checks that the error repeats.
    fn read_until_error(
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
}
