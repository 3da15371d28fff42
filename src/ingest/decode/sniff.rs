//! Pass 0: one streaming read of the whole file that refuses what is not
//! CSV text, decides the encoding and finds the delimiter. It must never
//! yield records: that is [`super::record`]'s job.

use super::*;

mod zip;

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

pub(super) fn sniff_reader<R: Read + Seek>(
    mut r: R,
    opts: &DecodeOptions,
    chunk: usize,
) -> Result<Sniffed, FileError> {
    let head = read_head(&mut r, HEAD)?;
    if head.is_empty() {
        return Err(empty_file());
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        let names = zip::entry_names(&mut r, &head)?;
        return Err(zip::refused(zip::ZipKind::of(&names, &head)));
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
            uncounted_rows: 0,
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
                    uncounted_rows: 0,
                }),
                Err(ScanError::NotUtf8) => Err(not_valid(fallback, None)),
                Err(ScanError::File(e)) => Err(e),
            }
        }
        Err(ScanError::NotUtf8) => Err(not_valid(encoding, None)),
        Err(ScanError::File(e)) => Err(e),
    }
}

pub(super) enum ScanError {
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
pub(super) fn scan<R: Read>(
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
pub(super) fn mixed_utf8_line<R: Read>(r: &mut R, chunk: usize) -> Result<Option<u64>, FileError> {
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

pub(super) fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

pub(super) fn read_head<R: Read>(r: &mut R, max: usize) -> Result<Vec<u8>, FileError> {
    let mut head = Vec::with_capacity(max);
    r.take(max as u64)
        .read_to_end(&mut head)
        .map_err(|e| FileError::io(&e))?;
    Ok(head)
}

pub(super) fn rewind<R: Seek>(r: &mut R) -> Result<(), FileError> {
    r.seek(SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| FileError::io(&e))
}

pub(super) fn check_signatures(head: &[u8]) -> Result<(), FileError> {
    let unsupported = |msg: &str| Err(FileError::new(FileErrorCode::UnsupportedFileType, msg));
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
pub(super) fn looks_like_utf16_without_bom(head: &[u8]) -> bool {
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

pub(super) fn is_utf16(enc: &'static Encoding) -> bool {
    enc == UTF_16LE || enc == UTF_16BE
}

pub(super) fn empty_file() -> FileError {
    FileError::new(
        FileErrorCode::EmptyFile,
        "the file is empty: it needs a header row naming the columns, then one row per user",
    )
}

pub(super) fn nul_bytes(utf16: bool) -> FileError {
    let msg = if utf16 {
        "the file looks like UTF-16 without a byte order mark; save it as CSV UTF-8"
    } else {
        "the file contains NUL bytes, so it is not a CSV text file: save the user list as CSV UTF-8"
    };
    FileError::new(FileErrorCode::Undecodable, msg)
}

pub(super) fn not_valid(enc: &'static Encoding, at: Option<u64>) -> FileError {
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
pub(super) struct Utf8Validator {
    pub(super) carry: [u8; 4],
    pub(super) carry_len: usize,
}

impl Utf8Validator {
    pub(super) fn feed(&mut self, mut data: &[u8]) -> bool {
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

    pub(super) fn finish(&self) -> bool {
        self.carry_len == 0
    }
}

/// Finds the `sep=` line and the header line (the first line with something
/// other than whitespace, after any `sep=` line), and counts the candidate
/// delimiters of the header outside double quotes. A line without any
/// candidate (a PowerShell `#TYPE` line, a report's title) does not decide
/// the delimiter: the next lines, up to [`DELIMITER_LINES`], are counted
/// instead, so a `;` header below a title is read with `;`.
#[derive(Default)]
pub(super) struct HeaderScanner {
    pub(super) phase: Phase,
    pub(super) first: [u8; 5],
    pub(super) first_len: usize,
    pub(super) sep: Option<u8>,
    pub(super) in_quotes: bool,
    pub(super) line_content: bool,
    pub(super) counts: [u64; 4],
    pub(super) found_header: bool,
    /// Lines with content seen without any candidate delimiter.
    pub(super) bare_lines: usize,
}

/// How many lines with content but no candidate delimiter are passed over
/// to find the line that decides the delimiter (the header finder looks as
/// far for a header below title lines).
pub(super) const DELIMITER_LINES: usize = 10;

#[derive(Default, PartialEq, Eq)]
pub(super) enum Phase {
    #[default]
    FirstLine,
    Header,
    Done,
}

pub(super) const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

impl HeaderScanner {
    pub(super) fn feed(&mut self, buf: &[u8]) {
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

    pub(super) fn finish(&mut self) {
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

    pub(super) fn is_sep_line(&self) -> bool {
        self.first_len == 5
            && self.first[..4].eq_ignore_ascii_case(b"sep=")
            && valid_sep_char(self.first[4])
    }

    pub(super) fn replay_first(&mut self) {
        self.phase = Phase::Header;
        let first = self.first;
        self.header(&first[..self.first_len]);
    }

    pub(super) fn header(&mut self, bytes: &[u8]) {
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
                        if self.counts == [0; 4] && self.bare_lines + 1 < DELIMITER_LINES {
                            self.bare_lines += 1;
                            self.line_content = false;
                        } else {
                            self.phase = Phase::Done;
                        }
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

    pub(super) fn sniffed_delimiter(&self) -> u8 {
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
pub(super) fn valid_sep_char(b: u8) -> bool {
    b == b'\t' || ((0x20..0x7F).contains(&b) && b != b'"')
}

#[cfg(test)]
mod tests {
    use crate::ingest::decode::test_support::*;
    use crate::ingest::decode::*;

    // --- refused files ---------------------------------------------------

    #[test]
    fn workbooks_and_pdfs_are_unsupported() {
        // A ZIP that names no workbook part is not called a workbook (the
        // kinds of ZIP: `zip::tests`).
        let e = err(b"PK\x03\x04\x14\x00\x06\x00rest of a zip");
        assert_eq!(e.code, FileErrorCode::UnsupportedFileType);
        assert!(
            e.message.contains("ZIP archive") && e.message.contains("CSV UTF-8"),
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
    fn lines_without_a_delimiter_above_the_header_do_not_decide_it() {
        let o = DecodeOptions::default();
        for text in [
            "#TYPE Microsoft.ActiveDirectory.Management.ADUser\nSamAccountName;Enabled\nann;True\n",
            "Active Employees Report\nGenerated 2026-11-30 06:00\n\nEmployee #;Last Name\n1;Archer\n",
        ] {
            assert_eq!(sniff_bytes(text.as_bytes(), &o).unwrap().delimiter, b';', "{text}");
        }
        // A one-column file stays comma-separated (nothing else to go by).
        let s = sniff_bytes(b"email\nann@example.com\n", &o).unwrap();
        assert_eq!(s.delimiter, b',');
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
}
