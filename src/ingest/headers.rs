//! Finds and maps a file's header row (docs/formats.md#header-row): which
//! line is the header (below a PowerShell `#TYPE` line or a report's title
//! lines), which export layout it is, which column holds which field, which
//! columns mean nothing to us or hold secrets, and whether the file can be
//! imported at all. A missing required column or two columns for one field
//! refuse the whole file, naming the columns so the customer knows what to
//! rename. Both passes of an import position their reader with this module
//! ([`find`], [`skip_header`]), so they always agree on where data starts.
//! This module must never judge a data row.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::decode::{RecordReader, Sniffed};
use super::error::{FileError, FileErrorCode};
use super::layout::{dn_key, Layout, Role};
use super::schema::{normalize_header, FieldKind, Schema};

/// What to do with a column that maps to no field: a tenant's choice
/// (`unknown_columns`), kept here because the header mapping applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownColumns {
    Ignore,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    /// The header cells exactly as received (trimmed), for reports.
    pub columns: Vec<String>,
    /// For each schema field, the column that holds it.
    pub column_of: Vec<Option<usize>>,
    /// Columns that map to no field, by header text.
    pub ignored: Vec<String>,
    /// The export layout the header was read as.
    pub layout: Layout,
    /// Columns holding passwords or hashes: read as empty (see
    /// [`RecordReader::blank_columns`]).
    pub secret: Vec<usize>,
    /// The row's own distinguished name (Active Directory).
    pub dn_column: Option<usize>,
    /// Lines above the header that were skipped (a PowerShell `#TYPE` line,
    /// a report's title lines), as text.
    pub preamble: Vec<String>,
    /// Records before the header row.
    pub skip: usize,
    /// Managers named by distinguished name: DN ([`dn_key`]) → user_id,
    /// from the file's own rows.
    pub managers: HashMap<String, String>,
}

/// How far from the top a header may be found, below title lines.
pub const HEADER_SEARCH_ROWS: u64 = 10;

impl HeaderMap {
    /// Maps a header as the layout it is recognised as.
    pub fn map<'a>(
        schema: &Schema,
        header: impl Iterator<Item = &'a str>,
        unknown: UnknownColumns,
    ) -> Result<HeaderMap, FileError> {
        Self::map_as(schema, header, unknown, None)
    }

    /// Maps a header as `pin`, or as the layout it is recognised as.
    pub fn map_as<'a>(
        schema: &Schema,
        header: impl Iterator<Item = &'a str>,
        unknown: UnknownColumns,
        pin: Option<Layout>,
    ) -> Result<HeaderMap, FileError> {
        let columns: Vec<String> = header.map(|h| h.trim().to_string()).collect();
        let norms: Vec<String> = columns.iter().map(|c| normalize_header(c)).collect();
        let layout = pin.unwrap_or_else(|| Layout::recognise(&norms));
        let def = layout.def();
        let roles: Vec<Option<Role>> = norms.iter().map(|n| def.role(n)).collect();
        // Fields a column of the layout fills: other columns that could
        // fill them lose, instead of making the header ambiguous.
        let mut claimed = vec![false; schema.fields.len()];
        for role in roles.iter().flatten() {
            if let Role::Fill(kinds) = role {
                for f in kinds.iter().filter_map(|k| schema.field(*k)) {
                    claimed[f] = true;
                }
            }
        }
        let mut m = HeaderMap {
            column_of: vec![None; schema.fields.len()],
            ignored: Vec::new(),
            layout,
            secret: Vec::new(),
            dn_column: None,
            preamble: Vec::new(),
            skip: 0,
            managers: HashMap::new(),
            columns: Vec::new(),
        };
        let mut unknown_cols = Vec::new();
        let ours = own_trailer(&columns);
        for (col, text) in columns.iter().enumerate() {
            if col >= ours {
                // The `row` and `error` of our own failed-rows file: a
                // fixed copy of it imports back as it is.
                m.ignored.push(text.clone());
                continue;
            }
            match roles[col] {
                Some(Role::Fill(kinds)) => {
                    for f in kinds.iter().filter_map(|k| schema.field(*k)) {
                        m.column_of[f].get_or_insert(col);
                    }
                    continue;
                }
                Some(Role::Secret) => {
                    m.secret.push(col);
                    m.ignored.push(text.clone());
                    continue;
                }
                Some(Role::Ignore) => {
                    m.ignored.push(text.clone());
                    continue;
                }
                Some(Role::DistinguishedName) => {
                    m.dn_column = Some(col);
                    continue;
                }
                None => {}
            }
            let Some(field) = schema.lookup(text) else {
                let name = if !text.is_empty() {
                    text.clone()
                } else {
                    format!("(column {}, no header)", col + 1)
                };
                m.ignored.push(name.clone());
                unknown_cols.push(name);
                continue;
            };
            if claimed[field] {
                m.ignored.push(text.clone());
                continue;
            }
            if let Some(first) = m.column_of[field] {
                let name = &schema.fields[field].name;
                return Err(FileError::new(
                    FileErrorCode::AmbiguousHeader,
                    format!(
                        "column {:?} (column {}) and column {:?} (column {}) both mean {name}; keep one of them",
                        columns[first],
                        first + 1,
                        text,
                        col + 1
                    ),
                )
                .with_field(name.clone()));
            }
            m.column_of[field] = Some(col);
        }
        check_required(schema, &columns, &m.column_of)?;
        if unknown == UnknownColumns::Error && !unknown_cols.is_empty() {
            return Err(FileError::new(
                FileErrorCode::UnknownColumn,
                format!(
                    "this inbox does not accept unknown columns, and these match no field: {}; remove them or rename them to a known field (see `userdrop template`)",
                    unknown_cols.join(", ")
                ),
            )
            .with_field(unknown_cols[0].clone()));
        }
        m.columns = columns;
        Ok(m)
    }

    pub fn column(&self, schema: &Schema, kind: FieldKind) -> Option<usize> {
        schema.field(kind).and_then(|f| self.column_of[f])
    }

    /// The column of `kind` as the customer's header names it (`E-mail`),
    /// or `fallback` (our field name) when the header has no such column.
    /// Messages name columns this way: the customer finds them in the file.
    pub fn column_name<'a>(
        &'a self,
        schema: &Schema,
        kind: FieldKind,
        fallback: &'a str,
    ) -> &'a str {
        self.column(schema, kind)
            .and_then(|c| self.columns.get(c))
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .unwrap_or(fallback)
    }

    /// The user_id of the manager a `reports_to` value names: a
    /// distinguished name found in the file becomes that user's user_id;
    /// anything else is the user_id itself.
    pub fn manager<'a>(&self, value: &'a str) -> std::borrow::Cow<'a, str> {
        if self.dn_column.is_some() {
            if let Some(uid) = self.managers.get(&dn_key(value)) {
                return std::borrow::Cow::Owned(uid.clone());
            }
        }
        std::borrow::Cow::Borrowed(value)
    }
}

/// Where the trailing `row` and `error` columns that the failed-rows CSV
/// adds begin (`columns.len()` when the header does not end with them).
fn own_trailer(columns: &[String]) -> usize {
    match columns {
        [.., row, error] if row == "row" && error == "error" => columns.len() - 2,
        _ => columns.len(),
    }
}

/// Whether any cell of a would-be header names a field.
fn names_a_field(schema: &Schema, cells: &[String], pin: Option<Layout>) -> bool {
    let norms: Vec<String> = cells.iter().map(|c| normalize_header(c)).collect();
    let def = pin.unwrap_or_else(|| Layout::recognise(&norms)).def();
    cells
        .iter()
        .zip(&norms)
        .any(|(c, n)| matches!(def.role(n), Some(Role::Fill(_))) || schema.lookup(c).is_some())
}

/// A PowerShell `Export-Csv` type line: `#TYPE Microsoft.ActiveDirectory...`.
fn is_type_line(cells: &[String]) -> bool {
    cells.first().is_some_and(|c| c.starts_with("#TYPE"))
        && cells[1..].iter().all(|c| c.trim().is_empty())
}

/// How the header of a tenant's files is read.
#[derive(Debug, Clone, Copy)]
pub struct HeaderRules<'a> {
    pub schema: &'a Schema,
    pub unknown: UnknownColumns,
    /// The tenant's `layout`, if it pins one.
    pub layout: Option<Layout>,
}

/// Finds the header row and maps it; returns a reader positioned on the
/// first data row. The header is the first line, unless that line is a
/// PowerShell `#TYPE` line (skipped) or names no field while a line within
/// the first [`HEADER_SEARCH_ROWS`] maps every required one (the lines
/// above it are title lines, skipped and named in `preamble`). `columns`
/// receives the header cells even when the header is refused.
pub fn find(
    path: &Path,
    sniffed: &Sniffed,
    rules: HeaderRules<'_>,
    columns: &mut Vec<String>,
) -> Result<(RecordReader<File>, HeaderMap), FileError> {
    let mut lines: Vec<Vec<String>> = Vec::new();
    {
        let mut reader = RecordReader::open(path, sniffed)?;
        loop {
            let rec = match reader.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                // A broken row below the header is reported by the pass
                // that reaches it, with the header known.
                Err(_) if !lines.is_empty() => break,
                Err(e) => return Err(e),
            };
            let row = rec.row();
            lines.push(rec.iter().map(|c| c.trim().to_string()).collect());
            if row >= HEADER_SEARCH_ROWS || lines.len() as u64 >= HEADER_SEARCH_ROWS {
                break;
            }
        }
    }
    if lines.is_empty() {
        return Err(FileError::new(
            FileErrorCode::EmptyFile,
            "the file is empty: it needs a header row",
        ));
    }
    let first = usize::from(lines.len() > 1 && is_type_line(&lines[0]));
    let at = if names_a_field(rules.schema, &lines[first], rules.layout) {
        first
    } else {
        (first + 1..lines.len())
            .find(|&i| {
                HeaderMap::map_as(
                    rules.schema,
                    lines[i].iter().map(String::as_str),
                    UnknownColumns::Ignore,
                    rules.layout,
                )
                .is_ok()
            })
            .unwrap_or(first)
    };
    columns.clone_from(&lines[at]);
    let mut map = HeaderMap::map_as(
        rules.schema,
        lines[at].iter().map(String::as_str),
        rules.unknown,
        rules.layout,
    )
    .map_err(|e| delimiter_hint(e, rules, &lines[at], sniffed))?;
    map.skip = at;
    map.preamble = lines[..at]
        .iter()
        .map(|cells| {
            let text: Vec<&str> = cells
                .iter()
                .map(String::as_str)
                .filter(|c| !c.is_empty())
                .collect();
            text.join(" ")
        })
        .filter(|t| !t.is_empty())
        .collect();
    if let (Some(dn), Some(uid)) = (map.dn_column, map.column(rules.schema, FieldKind::UserId)) {
        map.managers = index_dns(path, sniffed, &map, dn, uid)?;
    }
    let mut reader = RecordReader::open(path, sniffed)?;
    skip_header(&mut reader, &map)?;
    Ok((reader, map))
}

/// The delimiters a header may be split with, and their names in the
/// config's `delimiter`.
const DELIMITERS: &[(u8, &str, &str)] = &[
    (b',', "','", "comma"),
    (b';', "';'", "semicolon"),
    (b'\t', "a tab", "tab"),
    (b'|', "'|'", "pipe"),
    (b'-', "'-'", "hyphen"),
];

fn delimiter_words(d: u8) -> (String, &'static str) {
    DELIMITERS
        .iter()
        .find(|(b, _, _)| *b == d)
        .map(|(_, shown, name)| (shown.to_string(), *name))
        .unwrap_or_else(|| (format!("'{}'", d as char), ""))
}

/// A missing required column may be a wrong delimiter: says which one the
/// file was read with and, when the header splits into the required
/// columns with another, which one and how to set it.
fn delimiter_hint(
    e: FileError,
    rules: HeaderRules<'_>,
    cells: &[String],
    sniffed: &Sniffed,
) -> FileError {
    if e.code != FileErrorCode::MissingRequiredColumn || cells.iter().all(String::is_empty) {
        return e;
    }
    let line = cells.join(&(sniffed.delimiter as char).to_string());
    let fits = DELIMITERS.iter().find(|(d, _, _)| {
        let parts: Vec<&str> = line.split(*d as char).collect();
        *d != sniffed.delimiter
            && parts.len() > 1
            && HeaderMap::map_as(
                rules.schema,
                parts.into_iter(),
                UnknownColumns::Ignore,
                rules.layout,
            )
            .is_ok()
    });
    let (assumed, _) = delimiter_words(sniffed.delimiter);
    let how = if sniffed.sep_line {
        " (as the file's sep= line says)"
    } else {
        ""
    };
    let hint = match fits {
        Some((_, shown, name)) => format!(
            " The file was read with {assumed} as the delimiter{how}; its header splits into the expected columns with {shown}: set delimiter = \"{name}\" for this inbox (or ask its operator to), or save the file with {assumed} between the fields."
        ),
        None if cells.len() == 1 => format!(
            " The file was read with {assumed} as the delimiter{how} and its header is one column: if the fields are separated by another character, set delimiter for this inbox (\"semicolon\", \"tab\", \"pipe\", \"hyphen\"; a hyphen is never guessed, names like e-mail contain one)."
        ),
        None => return e,
    };
    FileError {
        message: format!("{}.{hint}", e.message),
        ..e
    }
}

/// Positions a reader of the same file on the first data row, as [`find`]
/// did, and blanks the secret columns.
pub fn skip_header<R: std::io::Read>(
    reader: &mut RecordReader<R>,
    map: &HeaderMap,
) -> Result<(), FileError> {
    for _ in 0..=map.skip {
        reader.next_record()?;
    }
    reader.blank_columns(&map.secret);
    Ok(())
}

/// DN → user_id of every row of the file (Active Directory's `Manager`
/// names a manager by DN).
fn index_dns(
    path: &Path,
    sniffed: &Sniffed,
    map: &HeaderMap,
    dn: usize,
    uid: usize,
) -> Result<HashMap<String, String>, FileError> {
    let mut reader = RecordReader::open(path, sniffed)?;
    skip_header(&mut reader, map)?;
    let mut out = HashMap::new();
    while let Some(rec) = reader.next_record()? {
        if let (Some(d), Some(u)) = (rec.get(dn), rec.get(uid)) {
            let (d, u) = (d.trim(), super::cell::clean(u));
            if !d.is_empty() && !u.is_empty() {
                out.insert(dn_key(d), u.to_string());
            }
        }
    }
    Ok(out)
}

/// A missing required column refuses the file, naming a few accepted names
/// and the header that was found.
fn check_required(
    schema: &Schema,
    columns: &[String],
    column_of: &[Option<usize>],
) -> Result<(), FileError> {
    let missing: Vec<&str> = schema
        .fields
        .iter()
        .zip(column_of)
        .filter(|(f, c)| f.required && c.is_none())
        .map(|(f, _)| f.name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        let hints: Vec<String> = missing
            .iter()
            .map(|name| {
                let f = &schema.fields[schema
                    .fields
                    .iter()
                    .position(|f| f.name == *name)
                    .unwrap_or(0)];
                // The field's own name is said once, not again as an example.
                let examples: Vec<&str> = f
                    .possible_names
                    .iter()
                    .filter(|n| normalize_header(n) != normalize_header(name))
                    .take(3)
                    .map(String::as_str)
                    .collect();
                format!("{name} (or e.g. {})", examples.join(", "))
            })
            .collect();
        let found = if columns.iter().all(String::is_empty) {
            "the first row is empty".to_string()
        } else {
            format!("the header row has: {}", columns.join(", "))
        };
        return Err(FileError::new(
                FileErrorCode::MissingRequiredColumn,
                format!(
                    "the file has no column for {}; {found}. Add the column, or check that the first row is the header row",
                    hints.join(" and ")
                ),
            )
            .with_field(first.to_string()));
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::schema::KeyField;

    fn schema() -> Schema {
        Schema::build(KeyField::UserId, &[]).unwrap()
    }

    #[test]
    fn maps_known_and_names_unknown() {
        let s = schema();
        let h = HeaderMap::map(
            &s,
            ["User ID", "E-mail", "Notes", ""].into_iter(),
            UnknownColumns::Ignore,
        )
        .unwrap();
        assert_eq!(h.column(&s, FieldKind::UserId), Some(0));
        assert_eq!(h.column(&s, FieldKind::Email), Some(1));
        assert_eq!(
            h.ignored,
            vec!["Notes".to_string(), "(column 4, no header)".to_string()]
        );
    }

    #[test]
    fn two_columns_for_one_field_is_ambiguous() {
        let err = HeaderMap::map(
            &schema(),
            ["userId", "Email", "E-mail"].into_iter(),
            UnknownColumns::Ignore,
        )
        .unwrap_err();
        assert_eq!(err.code, FileErrorCode::AmbiguousHeader);
        assert!(err
            .message
            .contains("\"Email\" (column 2) and column \"E-mail\" (column 3) both mean email"));
    }

    #[test]
    fn missing_required_column_names_it() {
        let err = HeaderMap::map(
            &schema(),
            ["userId", "first name"].into_iter(),
            UnknownColumns::Ignore,
        )
        .unwrap_err();
        assert_eq!(err.code, FileErrorCode::MissingRequiredColumn);
        assert_eq!(err.field.as_deref(), Some("email"));
        assert!(
            err.message.contains("no column for email"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_columns_can_be_refused() {
        let err = HeaderMap::map(
            &schema(),
            ["userId", "email", "Notes"].into_iter(),
            UnknownColumns::Error,
        )
        .unwrap_err();
        assert_eq!(err.code, FileErrorCode::UnknownColumn);
        assert!(err.message.contains("Notes"));
    }
}
