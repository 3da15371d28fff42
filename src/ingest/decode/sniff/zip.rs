//! ZIP files uploaded in place of a CSV: what they are (an Excel workbook, a
//! Word document, an OpenDocument spreadsheet, or some other ZIP archive),
//! told from the names of their entries, so that the refusal says what to
//! upload instead. It must never unpack anything or read more than the
//! archive's central directory (at most 1 MiB) and its first KB.

use super::*;

/// What a ZIP file holds, told by the names of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZipKind {
    Xlsx,
    Docx,
    Ods,
    Zip,
}

/// The first, stored entry of an OpenDocument spreadsheet holds this.
const ODS_MIME: &[u8] = b"application/vnd.oasis.opendocument.spreadsheet";

impl ZipKind {
    pub(super) fn of(names: &[Vec<u8>], head: &[u8]) -> ZipKind {
        let has = |n: &[u8]| names.iter().any(|x| x == n);
        let under = |p: &[u8]| names.iter().any(|x| x.starts_with(p));
        if has(b"[Content_Types].xml") && under(b"xl/") {
            ZipKind::Xlsx
        } else if has(b"[Content_Types].xml") && under(b"word/") {
            ZipKind::Docx
        } else if has(b"mimetype") && head.windows(ODS_MIME.len()).any(|w| w == ODS_MIME) {
            ZipKind::Ods
        } else {
            ZipKind::Zip
        }
    }
}

pub(super) fn refused(kind: ZipKind) -> FileError {
    let msg = match kind {
        ZipKind::Xlsx => {
            format!("this is an Excel workbook (.xlsx), not a CSV file: {SAVE_AS_CSV}")
        }
        ZipKind::Docx => "this is a Word document (.docx), not a CSV file: put the user list in a \
             spreadsheet and export the sheet as CSV UTF-8"
            .into(),
        ZipKind::Ods => "this is an OpenDocument spreadsheet (.ods), not a CSV file: export the \
             sheet as CSV UTF-8 (File › Save As › Text CSV)"
            .into(),
        ZipKind::Zip => {
            "this is a ZIP archive, not a CSV file: upload the CSV file itself (unpack \
             the archive), or export the sheet as CSV UTF-8"
                .into()
        }
    };
    FileError::new(FileErrorCode::UnsupportedFileType, msg)
}

/// The entry names of a ZIP file: from its central directory (found from the
/// end record in the last 64 KiB), else from the local headers in `head`.
/// At most 1 MiB of directory and 10,000 names are read.
pub(super) fn entry_names<R: Read + Seek>(
    r: &mut R,
    head: &[u8],
) -> Result<Vec<Vec<u8>>, FileError> {
    let io = |e: io::Error| FileError::io(&e);
    let u16_at = |b: &[u8], i: usize| {
        b.get(i..i + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as u64)
    };
    let len = r.seek(SeekFrom::End(0)).map_err(io)?;
    let tail_len = len.min(65_535 + 22);
    r.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
    let tail = read_head(r, tail_len as usize)?;
    let mut names = Vec::new();
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(b"PK\x05\x06"));
    if let Some(e) = eocd {
        let (size, offset) = (u32_at(&tail, e + 12), u32_at(&tail, e + 16));
        if let (Some(size), Some(offset)) = (size, offset) {
            if offset.saturating_add(size) <= len {
                r.seek(SeekFrom::Start(offset)).map_err(io)?;
                let cd = read_head(r, size.min(1 << 20) as usize)?;
                let mut i = 0;
                while cd.get(i..).is_some_and(|r| r.starts_with(b"PK\x01\x02"))
                    && names.len() < 10_000
                {
                    let (Some(n), Some(x), Some(c)) = (
                        u16_at(&cd, i + 28),
                        u16_at(&cd, i + 30),
                        u16_at(&cd, i + 32),
                    ) else {
                        break;
                    };
                    let Some(name) = cd.get(i + 46..i + 46 + n) else {
                        break;
                    };
                    names.push(name.to_vec());
                    i += 46 + n + x + c;
                }
            }
        }
    }
    if names.is_empty() {
        let mut i = 0;
        while head[i..].starts_with(b"PK\x03\x04") {
            let (Some(size), Some(n), Some(x)) = (
                u32_at(head, i + 18),
                u16_at(head, i + 26),
                u16_at(head, i + 28),
            ) else {
                break;
            };
            let Some(name) = head.get(i + 30..i + 30 + n) else {
                break;
            };
            names.push(name.to_vec());
            i = i
                .saturating_add(30 + n + x)
                .saturating_add(size as usize)
                .min(head.len());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::sniff_bytes;
    use crate::ingest::decode::test_support::auto;

    /// A stored (uncompressed) ZIP with these entries, as `zip` writes it.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (name, data) in entries {
            let offset = out.len() as u32;
            let (n, len) = (name.len() as u16, data.len() as u32);
            out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00");
            out.extend_from_slice(&[0; 8]); // time, date, crc (unchecked here)
            for v in [len, len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            cd.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00");
            cd.extend_from_slice(&[0; 8]);
            for v in [len, len] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            cd.extend_from_slice(&n.to_le_bytes());
            cd.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let (cd_offset, cd_len, count) = (out.len() as u32, cd.len() as u32, entries.len() as u16);
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&cd_len.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn refusal(bytes: &[u8]) -> FileError {
        let e = sniff_bytes(bytes, &auto()).expect_err("a ZIP is refused");
        assert_eq!(e.code, FileErrorCode::UnsupportedFileType);
        e
    }

    #[test]
    fn a_zip_is_named_for_what_it_holds() {
        // A big entry first: the workbook parts are past the first KB, only
        // the central directory names them.
        let big = vec![b'x'; 5000];
        let xlsx = zip(&[
            ("docProps/thumbnail.jpeg", &big),
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/workbook.xml", b"<workbook/>"),
        ]);
        let m = refusal(&xlsx).message;
        assert!(m.contains("Excel workbook (.xlsx)"), "{m}");
        let m = refusal(&zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w/>"),
        ]))
        .message;
        assert!(
            m.contains("Word document") && m.contains("CSV UTF-8"),
            "{m}"
        );
        let ods = zip(&[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
            ),
            ("content.xml", b"<office:document-content/>"),
        ]);
        let m = refusal(&ods).message;
        assert!(m.contains("OpenDocument spreadsheet (.ods)"), "{m}");
        for plain in [
            zip(&[("users.csv", b"user_id,email\nU1,a@b.example\n")]),
            zip(&[("xl/not-a-workbook.txt", b"no content types")]),
            zip(&[]),
        ] {
            let m = refusal(&plain).message;
            assert!(
                m.contains("ZIP archive")
                    && !m.contains("Excel")
                    && m.contains("export the sheet as CSV"),
                "{m}"
            );
        }
        // Cut before its central directory: the local headers still tell.
        let cut = &xlsx[..xlsx.len() - 30];
        let m = refusal(cut).message;
        assert!(
            m.contains("ZIP archive"),
            "the first entry is a thumbnail: {m}"
        );
        let early = zip(&[("[Content_Types].xml", b"<T/>"), ("xl/a.xml", b"<a/>")]);
        let m = refusal(&early[..early.len() - 30]).message;
        assert!(m.contains(".xlsx"), "{m}");
    }
}
