//! Maps a file's header row to the tenant's fields (docs/formats.md#header-row): which column
//! holds which field, which columns mean nothing to us, and whether the file
//! can be imported at all. A missing required column or two columns for one
//! field refuse the whole file, naming the columns so the customer knows what
//! to rename. This module must never look past the header row.

use super::error::{FileError, FileErrorCode};
use super::schema::{FieldKind, Schema};

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
}

impl HeaderMap {
    pub fn map<'a>(
        schema: &Schema,
        header: impl Iterator<Item = &'a str>,
        unknown: UnknownColumns,
    ) -> Result<HeaderMap, FileError> {
        let columns: Vec<String> = header.map(|h| h.trim().to_string()).collect();
        let mut column_of: Vec<Option<usize>> = vec![None; schema.fields.len()];
        let mut ignored = Vec::new();
        for (col, text) in columns.iter().enumerate() {
            let Some(field) = schema.lookup(text) else {
                if !text.is_empty() {
                    ignored.push(text.clone());
                } else {
                    ignored.push(format!("(column {}, no header)", col + 1));
                }
                continue;
            };
            if let Some(first) = column_of[field] {
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
            column_of[field] = Some(col);
        }

        let missing: Vec<&str> = schema
            .fields
            .iter()
            .zip(&column_of)
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
                    let examples: Vec<&str> = f
                        .possible_names
                        .iter()
                        .take(3)
                        .map(String::as_str)
                        .collect();
                    format!("{name} (a column named e.g. {})", examples.join(", "))
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

        if unknown == UnknownColumns::Error && !ignored.is_empty() {
            return Err(FileError::new(
                FileErrorCode::UnknownColumn,
                format!(
                    "this inbox does not accept unknown columns, and these match no field: {}; remove them or rename them to a known field (see `userdrop template`)",
                    ignored.join(", ")
                ),
            )
            .with_field(ignored[0].clone()));
        }
        Ok(HeaderMap {
            columns,
            column_of,
            ignored,
        })
    }

    pub fn column(&self, schema: &Schema, kind: FieldKind) -> Option<usize> {
        schema.field(kind).and_then(|f| self.column_of[f])
    }
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
