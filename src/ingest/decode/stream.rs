//! The byte-order mark and the decoded UTF-8 stream the record reader
//! reads from: bytes in the decided encoding in, UTF-8 out, never a U+FFFD
//! of its own. It must never split records.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bom {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Bom {
    pub(super) fn detect(head: &[u8]) -> Option<Bom> {
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

    pub(super) fn len(self) -> usize {
        match self {
            Bom::Utf8 => 3,
            Bom::Utf16Le | Bom::Utf16Be => 2,
        }
    }

    pub(super) fn encoding(self) -> &'static Encoding {
        match self {
            Bom::Utf8 => UTF_8,
            Bom::Utf16Le => UTF_16LE,
            Bom::Utf16Be => UTF_16BE,
        }
    }

    pub(super) fn label(self) -> &'static str {
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
pub(super) struct Utf8Stream<R> {
    pub(super) inner: R,
    pub(super) chunk: usize,
    pub(super) encoding: &'static Encoding,
    pub(super) bom: Option<Bom>,
    pub(super) started: bool,
    pub(super) decoder: Option<Decoder>,
    pub(super) raw: Vec<u8>,
    pub(super) raw_pos: usize,
    pub(super) raw_len: usize,
    pub(super) raw_eof: bool,
    /// File offset of `raw[0]`.
    pub(super) raw_offset: u64,
    pub(super) text: Vec<u8>,
    pub(super) text_pos: usize,
    pub(super) text_len: usize,
    pub(super) flushed: bool,
}

impl<R: Read> Utf8Stream<R> {
    pub(super) fn new(inner: R, default: &'static Encoding, chunk: usize) -> Self {
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

    pub(super) fn read_into(&mut self, at: usize, max: usize) -> Result<usize, FileError> {
        loop {
            match self.inner.read(&mut self.raw[at..at + max]) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::io(&e)),
            }
        }
    }

    pub(super) fn start(&mut self) -> Result<(), FileError> {
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
    pub(super) fn fill(&mut self) -> Result<(), FileError> {
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

    pub(super) fn buffer(&self) -> &[u8] {
        if self.decoder.is_some() {
            &self.text[self.text_pos..self.text_len]
        } else {
            &self.raw[self.raw_pos..self.raw_len]
        }
    }

    pub(super) fn consume(&mut self, n: usize) {
        if self.decoder.is_some() {
            self.text_pos += n;
        } else {
            self.raw_pos += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ingest::decode::test_support::*;
    use crate::ingest::decode::*;

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
            uncounted_rows: 0,
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
}
