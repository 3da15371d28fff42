//! One row at a time: checks every rule of docs/formats.md#field-rules that a row can be judged
//! on alone and turns the cells into normalised values ([`ValidRow`]), or
//! into every [`RowError`] the row has, so the customer fixes them all in one
//! go. Rules that need other rows or the store (duplicates, `reports_to`,
//! existing users) live in `plan`. This module must never allocate for a
//! value it can borrow: it runs twice per row on million-row files.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::NaiveDate;

use super::cell::FORMULA_START;
pub use super::cell::{clean, parse_bool};
use super::error::{quote, RowError};
use super::headers::HeaderMap;
use super::layout::Layout;
use super::schema::{FieldDef, FieldKind, KeyField, Schema};

/// A row's cells as the reader gives them.
pub trait Fields<'a> {
    fn row(&self) -> u64;
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Option<&'a str>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> Fields<'a> for super::decode::Record<'a> {
    fn row(&self) -> u64 {
        super::decode::Record::row(self)
    }
    fn len(&self) -> usize {
        super::decode::Record::len(self)
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        super::decode::Record::get(self, i)
    }
}

/// For tests: a row number and its cells.
impl<'a> Fields<'a> for (u64, &[&'a str]) {
    fn row(&self) -> u64 {
        self.0
    }
    fn len(&self) -> usize {
        self.1.len()
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        self.1.get(i).copied()
    }
}

/// A normalised value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cell<'a> {
    /// The file has no column for the field: leave what is stored.
    Absent,
    /// The column is there and the cell is empty.
    Empty,
    Text(Cow<'a, str>),
    Bool(bool),
    Roles(Vec<Cow<'a, str>>),
    Date(NaiveDate),
}

impl Cell<'_> {
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(t) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRow<'a> {
    pub row: u64,
    /// The value of the tenant's key field, normalised (emails lower-cased,
    /// phone numbers without spaces and punctuation).
    pub key: Cow<'a, str>,
    pub delete: bool,
    /// One per schema field.
    pub cells: Vec<Cell<'a>>,
}

/// What a row is, whether or not it is valid: enough for the cross-row rules
/// to know who a failed row names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowIdentity {
    pub key: String,
}

pub struct Validator<'s> {
    schema: &'s Schema,
    map: &'s HeaderMap,
    tenant: &'s str,
    date_format: &'s str,
    role_separator: &'s str,
    key_field: usize,
    columns: usize,
}

/// `v` in lower case, borrowed when it is already (as nearly every
/// address in a file is).
pub fn lowercase(v: &str) -> Cow<'_, str> {
    if v.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(v.to_lowercase())
    } else {
        Cow::Borrowed(v)
    }
}

/// `Local@Example.COM` → `Local@example.com`.
fn normalise_email(v: &str) -> Cow<'_, str> {
    match v.rsplit_once('@') {
        Some((local, domain)) if domain.bytes().any(|b| b.is_ascii_uppercase()) => {
            Cow::Owned(format!("{local}@{}", domain.to_ascii_lowercase()))
        }
        _ => Cow::Borrowed(v),
    }
}

/// The key form of a phone number: digits, with a leading `+` kept.
fn phone_key(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if c.is_ascii_digit() || (i == 0 && c == '+') {
            out.push(c);
        }
    }
    out
}

fn valid_phone(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && v.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (i == 0 && c == '+')
        })
}

/// A cell, or the reason code and message of why the value is refused.
type CellResult<'a> = Result<Cell<'a>, (String, String)>;

/// Builds a [`RowError`] of the row being checked: field, code, message.
trait ErrFn: Fn(Option<&str>, String, String) -> RowError {}
impl<F: Fn(Option<&str>, String, String) -> RowError> ErrFn for F {}

/// The character a formula starts with, in words a customer can act on.
fn formula_char(raw: &str, v: &str) -> String {
    match raw.trim_start_matches(' ').chars().next() {
        Some('\t') => "a tab".into(),
        Some('\r') => "a carriage return".into(),
        Some(c) if FORMULA_START.contains(&c) => quote(&c.to_string()),
        _ => quote(&v.chars().next().unwrap_or(' ').to_string()),
    }
}

fn name_value<'a>(column: &str, raw: &str, v: &'a str) -> CellResult<'a> {
    let leading = raw.trim_start_matches(' ').starts_with(FORMULA_START);
    if leading || v.starts_with(FORMULA_START) {
        // A leading tab or CR is trimmed off `v`: show the cell with it.
        let shown = if leading { raw.trim_matches(' ') } else { v };
        Err((
            "formula_value".to_string(),
            format!(
                "{column} {} starts with {}, which spreadsheets run as a formula; remove that character",
                quote(shown),
                formula_char(raw, v)
            ),
        ))
    } else {
        Ok(Cell::Text(Cow::Borrowed(v)))
    }
}

/// The characters RFC 5322 allows in an unquoted atom, as ASCII bytes.
const fn atext_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'/'
                    | b'='
                    | b'?'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
                    | b'~'
            );
        b += 1;
    }
    t
}
static ATEXT: [bool; 256] = atext_table();

/// Whether `v` is an address of the plain form nearly every file holds,
/// judged in one pass over its bytes: ASCII, dot-separated atoms (at most
/// 64 bytes) before its only `@`, and after it labels of letters, digits
/// and inner hyphens (at most 63 bytes each, 254 in all), with a dot
/// somewhere. The full parser costs a third of judging a whole row, so it
/// judges only what this does not accept; everything this accepts it
/// accepts too (`plain_emails_are_a_subset_of_the_parsers_rule`).
fn plain_email(v: &str) -> bool {
    let b = v.as_bytes();
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.len() > 254 {
        return false;
    }
    let mut prev = b'.';
    for &c in local {
        if c == b'.' {
            if prev == b'.' {
                return false;
            }
        } else if !ATEXT[c as usize] {
            return false;
        }
        prev = c;
    }
    if prev == b'.' {
        return false;
    }
    let mut dots = local.contains(&b'.');
    for label in domain.split(|&c| c == b'.') {
        dots |= label.len() < domain.len();
        match (label.first(), label.last()) {
            (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => {}
            _ => return false,
        }
        if label.len() > 63
            || !label
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            return false;
        }
    }
    dots
}

/// The rule for an address: what the RFC 5322 parser accepts, without
/// whitespace (a display name or quoted spaces) and with a dot somewhere.
fn parsed_email(v: &str) -> bool {
    email_address::EmailAddress::from_str(v).is_ok()
        && !v.contains(char::is_whitespace)
        && v.contains('.')
}

fn email_value<'a>(column: &str, v: &'a str) -> CellResult<'a> {
    if plain_email(v) || parsed_email(v) {
        Ok(Cell::Text(normalise_email(v)))
    } else {
        Err((
            "invalid_email".to_string(),
            format!(
                "{column} {} is not a valid address; write it like name@example.com",
                quote(v)
            ),
        ))
    }
}

/// notify_if_new_user, task_notification (enabled: [`enabled_value`]).
fn flag_value<'a>(kind: FieldKind, column: &str, v: &'a str) -> CellResult<'a> {
    match kind {
        FieldKind::NotifyIfNewUser => parse_bool(v).map(Cell::Bool).ok_or_else(|| {
            (
                "invalid_notify_if_new_user".to_string(),
                format!("{column} {} is not understood: use true or false", quote(v)),
            )
        }),
        _ => {
            if v.eq_ignore_ascii_case("off") {
                Ok(Cell::Text(Cow::Borrowed("OFF")))
            } else if v.eq_ignore_ascii_case("email") {
                Ok(Cell::Text(Cow::Borrowed("Email")))
            } else {
                Err((
                    "invalid_task_notification".to_string(),
                    format!("{column} {} is not understood: use OFF or Email", quote(v)),
                ))
            }
        }
    }
}

/// enabled, in the words of the file's layout (Okta's `SUSPENDED`, ADP's
/// `Terminated`) or the generic ones.
fn enabled_value<'a>(layout: Layout, column: &str, v: &'a str) -> CellResult<'a> {
    let def = layout.def();
    def.enabled(v).map(Cell::Bool).ok_or_else(|| {
        (
            "invalid_enabled".to_string(),
            format!(
                "{column} {} is not understood: use {}",
                quote(v),
                def.enabled_words()
            ),
        )
    })
}

fn mobile_value<'a>(column: &str, v: &'a str) -> CellResult<'a> {
    if valid_phone(v) {
        Ok(Cell::Text(Cow::Borrowed(v)))
    } else {
        Err((
            "invalid_mobile_number".to_string(),
            format!("{column} {} is not a phone number: it needs 5 to 20 digits, which spaces, dashes, dots and brackets may separate, and an optional leading +", quote(v)),
        ))
    }
}

impl<'s> Validator<'s> {
    pub fn new(
        schema: &'s Schema,
        map: &'s HeaderMap,
        tenant: &'s str,
        date_format: &'s str,
        role_separator: &'s str,
    ) -> Self {
        let key_field = schema
            .field(schema.key.kind())
            .expect("key field is built in");
        Validator {
            schema,
            map,
            tenant,
            date_format,
            role_separator,
            key_field,
            columns: map.columns.len(),
        }
    }

    /// The key as read (trimmed, not normalised): what reports show.
    pub fn raw_key<'a>(&self, fields: &impl Fields<'a>) -> &'a str {
        self.map.column_of[self.key_field]
            .and_then(|c| fields.get(c))
            .map(clean)
            .unwrap_or("")
    }

    /// The key as stored, or None when the row has none.
    pub fn key_of<'a>(&self, fields: &impl Fields<'a>) -> Option<Cow<'a, str>> {
        let raw = self.raw_key(fields);
        if raw.is_empty() {
            return None;
        }
        Some(self.normalise_key(raw))
    }

    pub fn normalise_key<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        match self.schema.key {
            KeyField::UserId => Cow::Borrowed(raw),
            KeyField::Email => lowercase(raw),
            KeyField::MobileNumber => Cow::Owned(phone_key(raw)),
        }
    }

    /// The user_id of the row's manager as the cross-row rules compare it
    /// (a distinguished name is resolved through the file), or "" for none.
    pub fn manager_key<'a>(&self, fields: &impl Fields<'a>) -> Cow<'a, str> {
        let cell = self
            .schema
            .field(FieldKind::ReportsTo)
            .and_then(|f| self.map.column_of[f])
            .and_then(|c| fields.get(c))
            .map(clean)
            .unwrap_or("");
        self.map.manager(cell)
    }

    pub fn is_blank<'a>(&self, fields: &impl Fields<'a>) -> bool {
        (0..fields.len()).all(|i| fields.get(i).is_none_or(|v| v.trim().is_empty()))
    }

    /// Judges one row: the field count, then the transaction, then each
    /// field in schema order, then the rules across fields. Every problem
    /// found is reported, in that order.
    pub fn check<'a>(&self, fields: &impl Fields<'a>) -> Result<ValidRow<'a>, Vec<RowError>> {
        let row = fields.row();
        let raw_key = self.raw_key(fields);
        let err = |field: Option<&str>, code: String, message: String| RowError {
            row,
            key: raw_key.to_string(),
            field: field.map(str::to_string),
            code,
            message,
        };
        if fields.len() != self.columns {
            return Err(vec![self.wrong_field_count(fields.len(), &err)]);
        }
        let mut errors = Vec::new();
        let delete = self.transaction(fields, &mut errors, &err);
        let mut cells: Vec<Cell<'a>> = Vec::with_capacity(self.schema.fields.len());
        for (idx, def) in self.schema.fields.iter().enumerate() {
            cells.push(self.field(idx, def, fields, delete, &mut errors, &err));
        }
        if !delete {
            self.check_reports_to(&cells, &mut errors, &err);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let key = match &cells[self.key_field] {
            Cell::Text(Cow::Borrowed(t)) => self.normalise_key(t),
            Cell::Text(Cow::Owned(t)) => Cow::Owned(self.normalise_key(t).into_owned()),
            _ => Cow::Borrowed(""),
        };
        Ok(ValidRow {
            row,
            key,
            delete,
            cells,
        })
    }

    fn wrong_field_count(&self, found: usize, err: &impl ErrFn) -> RowError {
        err(
            None,
            "wrong_field_count".into(),
            format!(
                "this row has {} fields but the header has {}; check for an unquoted delimiter or a missing field",
                found,
                self.columns
            ),
        )
    }

    /// Whether the row is a DELETE; an unknown transaction is an error and
    /// the row is then judged as an upsert.
    fn transaction<'a>(
        &self,
        fields: &impl Fields<'a>,
        errors: &mut Vec<RowError>,
        err: &impl ErrFn,
    ) -> bool {
        let transaction = self.schema.field(FieldKind::Transaction);
        let def = self.map.layout.def();
        match transaction
            .and_then(|f| self.map.column_of[f])
            .and_then(|c| fields.get(c))
        {
            Some(v) => match def.transaction(clean(v)) {
                Some(delete) => delete,
                None => {
                    let own: String = def
                        .transaction
                        .iter()
                        .map(|(w, d)| {
                            format!(
                                ", or {w} to {}",
                                if *d {
                                    "remove them"
                                } else {
                                    "create or update them"
                                }
                            )
                        })
                        .collect();
                    let column = transaction
                        .and_then(|f| self.column_name(f))
                        .unwrap_or("transaction");
                    errors.push(err(
                        Some("transaction"),
                        "invalid_transaction".into(),
                        format!("{column} {} is not understood: leave it empty to create or update the user, or write DELETE to remove them{own}", quote(clean(v))),
                    ));
                    false
                }
            },
            None => false,
        }
    }

    /// The cell of field `idx` (`def`) of the row; its problems go to `errors`.
    fn field<'a>(
        &self,
        idx: usize,
        def: &FieldDef,
        fields: &impl Fields<'a>,
        delete: bool,
        errors: &mut Vec<RowError>,
        err: &impl ErrFn,
    ) -> Cell<'a> {
        let Some(col) = self.map.column_of[idx] else {
            if def.required && !delete {
                // The header check makes this unreachable; keep the rule whole anyway.
                errors.push(err(
                    Some(&def.name),
                    format!("missing_{}", def.name),
                    format!("{} is required", def.name),
                ));
            }
            return Cell::Absent;
        };
        let raw = fields.get(col).unwrap_or("");
        let v = clean(raw);
        let name = def.name.as_str();
        // Messages name the column as the customer's header wrote it.
        let column = self.column_name(idx).unwrap_or(name);
        // A DELETE row needs its key (and its tenant, when given); the
        // rest of a full export's row is not judged.
        let judged = !delete || idx == self.key_field || def.kind == FieldKind::Tenant;
        if !judged {
            return Cell::Absent;
        }
        if v.is_empty() {
            if def.required {
                errors.push(err(
                    Some(name),
                    format!("missing_{name}"),
                    format!("{column} is empty; every row needs one"),
                ));
            }
            return match def.kind {
                FieldKind::Enabled => Cell::Bool(true),
                FieldKind::NotifyIfNewUser => Cell::Bool(false),
                FieldKind::TaskNotification => Cell::Text(Cow::Borrowed("Email")),
                FieldKind::Roles => Cell::Roles(Vec::new()),
                _ => Cell::Empty,
            };
        }
        // A value has no more characters than bytes: most are not counted.
        if def.kind != FieldKind::Roles && v.len() > def.max_len && v.chars().count() > def.max_len
        {
            errors.push(err(
                Some(name),
                "field_too_long".into(),
                format!(
                    "{column} is {} characters long; the most accepted is {}",
                    v.chars().count(),
                    def.max_len
                ),
            ));
            return Cell::Empty;
        }
        match self.value(def.kind, column, raw, v) {
            Ok(c) => c,
            Err((code, message)) => {
                errors.push(err(Some(name), code, message));
                Cell::Empty
            }
        }
    }

    /// The header text of field `idx`'s column, when the header names it.
    fn column_name(&self, idx: usize) -> Option<&str> {
        self.map.column_of[idx]
            .and_then(|c| self.map.columns.get(c))
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }

    /// The cell of a non-empty value `v` (read as `raw`) of the field in
    /// column `column` (its header text).
    fn value<'a>(&self, kind: FieldKind, column: &str, raw: &str, v: &'a str) -> CellResult<'a> {
        match kind {
            FieldKind::UserId | FieldKind::Country | FieldKind::State | FieldKind::Custom => {
                Ok(Cell::Text(Cow::Borrowed(v)))
            }
            FieldKind::ReportsTo => Ok(Cell::Text(self.map.manager(v))),
            FieldKind::Enabled => enabled_value(self.map.layout, column, v),
            FieldKind::FirstName | FieldKind::LastName => name_value(column, raw, v),
            FieldKind::Email => email_value(column, v),
            FieldKind::NotifyIfNewUser | FieldKind::TaskNotification => flag_value(kind, column, v),
            FieldKind::Roles => self.roles(column, v),
            FieldKind::MobileNumber => mobile_value(column, v),
            FieldKind::LastActiveDate => self.date_value(column, v),
            FieldKind::Tenant => self.tenant_value(column, v),
            FieldKind::Transaction => Ok(Cell::Absent),
        }
    }

    fn date_value<'a>(&self, column: &str, v: &str) -> CellResult<'a> {
        self.date(v).map(Cell::Date).ok_or_else(|| {
            (
                "invalid_last_active_date".to_string(),
                format!(
                    "{column} {} is not a date: write it as YYYY-MM-DD{}",
                    quote(v),
                    if self.date_format != "%Y-%m-%d" {
                        format!(" or as {}", self.date_format)
                    } else {
                        String::new()
                    }
                ),
            )
        })
    }

    fn tenant_value<'a>(&self, column: &str, v: &str) -> CellResult<'a> {
        // Tenant names are compared as people read them: `ACME` is `acme`.
        if v == self.tenant || v.to_lowercase() == self.tenant.to_lowercase() {
            Ok(Cell::Absent)
        } else {
            Err((
                "wrong_tenant".to_string(),
                format!(
                    "this row is for tenant {} but was uploaded to tenant {}; upload it to its own inbox or fix the {column} column",
                    quote(v),
                    quote(self.tenant)
                ),
            ))
        }
    }

    /// Across fields: nobody reports to themselves, the shortest loop of
    /// managers (`reports_to_cycle`, like the longer ones the import finds
    /// across rows; the import does not judge this row's manager again).
    fn check_reports_to(&self, cells: &[Cell<'_>], errors: &mut Vec<RowError>, err: &impl ErrFn) {
        if let (Some(uid), Some(rt)) = (
            self.schema.field(FieldKind::UserId),
            self.schema.field(FieldKind::ReportsTo),
        ) {
            if let (Some(a), Some(b)) = (cells[uid].text(), cells[rt].text()) {
                if a == b {
                    errors.push(err(
                        Some("reports_to"),
                        "reports_to_cycle".into(),
                        format!("reports_to {b:?} makes a loop of managers ({a} → {a}): a user cannot report to themselves; name their manager or leave it empty"),
                    ));
                }
            }
        }
    }

    fn roles<'a>(&self, column: &str, v: &'a str) -> Result<Cell<'a>, (String, String)> {
        let mut roles: Vec<Cow<'a, str>> = Vec::new();
        for part in split_on(v, self.role_separator) {
            let r = part.trim();
            if r.is_empty() {
                continue;
            }
            if r.contains(char::is_whitespace) {
                return Err((
                    "invalid_roles".to_string(),
                    format!(
                        "{column}: role {} contains a space; role names have no spaces, and several roles are separated by {}",
                        quote(r),
                        quote(self.role_separator)
                    ),
                ));
            }
            if r.len() > 100 && r.chars().count() > 100 {
                return Err((
                    "field_too_long".to_string(),
                    format!(
                        "{column}: role {}… is longer than 100 characters",
                        quote(&r.chars().take(20).collect::<String>())
                    ),
                ));
            }
            if !roles.iter().any(|x| x == r) {
                roles.push(Cow::Borrowed(r));
            }
        }
        Ok(Cell::Roles(roles))
    }

    fn date(&self, v: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .or_else(|| NaiveDate::parse_from_str(v, self.date_format).ok())
    }
}

/// `v` split on `sep` as `str::split` does, but a one-character separator
/// (the usual `,`, `;` or `|`) is looked for as a character (memchr)
/// rather than as a string; an empty separator does not split.
fn split_on<'a, 'b>(v: &'a str, sep: &'b str) -> impl Iterator<Item = &'a str> + use<'a, 'b> {
    let mut chars = sep.chars();
    let one = match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    };
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        let r = rest?;
        let at = match one {
            Some(c) => r.find(c).map(|i| (i, c.len_utf8())),
            None if sep.is_empty() => None,
            None => r.find(sep).map(|i| (i, sep.len())),
        };
        match at {
            Some((i, n)) => {
                rest = Some(&r[i + n..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

impl ValidRow<'_> {
    pub fn cell(&self, schema: &Schema, kind: FieldKind) -> &Cell<'_> {
        schema
            .field(kind)
            .map(|i| &self.cells[i])
            .unwrap_or(&Cell::Absent)
    }

    /// A fingerprint of what the row asks for. An identical fingerprint on
    /// the stored user means the row would change nothing.
    pub fn fingerprint(&self) -> i64 {
        use std::hash::{Hash, Hasher};
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        self.key.hash(&mut h);
        self.delete.hash(&mut h);
        self.cells.hash(&mut h);
        h.finish() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::headers::UnknownColumns;

    fn setup(header: &[&str]) -> (Schema, HeaderMap) {
        let s = Schema::build(KeyField::UserId, &[]).unwrap();
        let m = HeaderMap::map(&s, header.iter().copied(), UnknownColumns::Ignore).unwrap();
        (s, m)
    }

    fn codes(r: Result<ValidRow<'_>, Vec<RowError>>) -> Vec<String> {
        match r {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| e.code).collect(),
        }
    }

    #[test]
    fn roles_split_like_str_split() {
        for (v, sep) in [
            ("a,b,,c", ","),
            ("a", ","),
            ("", ","),
            ("a||b|", "||"),
            ("x é y", "é"),
            ("a;b", ""),
            (",a,", ","),
        ] {
            let want: Vec<&str> = if sep.is_empty() {
                vec![v]
            } else {
                v.split(sep).collect()
            };
            assert_eq!(
                split_on(v, sep).collect::<Vec<_>>(),
                want,
                "{v:?} on {sep:?}"
            );
        }
    }

    #[test]
    fn a_good_row_is_normalised() {
        let (s, m) = setup(&["userId", "email", "enabled", "roles", "lastActiveDate"]);
        let v = Validator::new(&s, &m, "acme", "%d/%m/%Y", "|");
        let row = v
            .check(&(
                2,
                &[
                    " U1 ",
                    "Ann@Example.COM",
                    "Inactive",
                    "a| b |a",
                    "31/12/2024",
                ][..],
            ))
            .unwrap();
        assert_eq!(row.key, "U1");
        assert_eq!(
            row.cell(&s, FieldKind::Email).text(),
            Some("Ann@example.com")
        );
        assert_eq!(row.cell(&s, FieldKind::Enabled), &Cell::Bool(false));
        assert_eq!(
            row.cell(&s, FieldKind::Roles),
            &Cell::Roles(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            row.cell(&s, FieldKind::LastActiveDate),
            &Cell::Date(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap())
        );
    }

    #[test]
    fn every_error_of_a_row_is_reported() {
        let (s, m) = setup(&[
            "userId",
            "email",
            "firstName",
            "enabled",
            "roles",
            "taskNotification",
        ]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        let got = codes(v.check(&(3, &["", "nope", "=cmd()", "maybe", "two words", "sms"][..])));
        assert_eq!(
            got,
            vec![
                "missing_user_id",
                "invalid_email",
                "formula_value",
                "invalid_enabled",
                "invalid_roles",
                "invalid_task_notification"
            ]
        );
    }

    #[test]
    fn wrong_field_count_is_one_error() {
        let (s, m) = setup(&["userId", "email"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        assert_eq!(
            codes(v.check(&(2, &["U1", "a@b.com", "extra"][..]))),
            vec!["wrong_field_count"]
        );
    }

    #[test]
    fn delete_rows_need_only_their_key() {
        let (s, m) = setup(&["userId", "email", "action"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        let row = v.check(&(2, &["U1", "", "delete"][..])).unwrap();
        assert!(row.delete);
        assert_eq!(
            codes(v.check(&(2, &["", "", "DELETE"][..]))),
            vec!["missing_user_id"]
        );
        assert_eq!(
            codes(v.check(&(2, &["U1", "a@b.com", "purge"][..]))),
            vec!["invalid_transaction"]
        );
    }

    #[test]
    fn neutralised_cells_read_back_and_names_are_checked() {
        let (s, m) = setup(&["userId", "email", "lastName", "mobile"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        let row = v
            .check(&(2, &["U1", "a@b.com", "Smith", "'+44 7700 900123"][..]))
            .unwrap();
        assert_eq!(
            row.cell(&s, FieldKind::MobileNumber).text(),
            Some("+44 7700 900123")
        );
        assert_eq!(
            codes(v.check(&(2, &["U1", "a@b.com", "'=1+1", ""][..]))),
            vec!["formula_value"]
        );
        assert_eq!(
            codes(v.check(&(2, &["U1", "a@b.com", "@SUM", ""][..]))),
            vec!["formula_value"]
        );
    }

    #[test]
    fn a_user_reporting_to_themselves_is_refused_after_the_field_errors() {
        let (s, m) = setup(&["userId", "email", "reportsTo", "action"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        assert!(v.check(&(2, &["U1", "a@b.com", "U2", ""][..])).is_ok());
        assert_eq!(
            codes(v.check(&(2, &["U1", "nope", "U1", ""][..]))),
            vec!["invalid_email", "reports_to_cycle"]
        );
        let one = v.check(&(2, &["U1", "a@b.com", "U1", ""][..])).unwrap_err();
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(one[0].message.contains("U1 → U1"), "{}", one[0].message);
        assert!(
            v.check(&(2, &["U1", "", "U1", "DELETE"][..]))
                .unwrap()
                .delete
        );
    }

    #[test]
    fn tenant_column_must_match() {
        let (s, m) = setup(&["userId", "email", "tenant"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        assert!(v.check(&(2, &["U1", "a@b.com", "acme"][..])).is_ok());
        assert_eq!(
            codes(v.check(&(2, &["U1", "a@b.com", "globex"][..]))),
            vec!["wrong_tenant"]
        );
    }

    #[test]
    fn fingerprint_changes_with_any_value() {
        let (s, m) = setup(&["userId", "email", "lastName"]);
        let v = Validator::new(&s, &m, "acme", "%Y-%m-%d", "|");
        let a = v
            .check(&(2, &["U1", "a@b.com", "Smith"][..]))
            .unwrap()
            .fingerprint();
        let b = v
            .check(&(9, &["U1", "a@b.com", " Smith "][..]))
            .unwrap()
            .fingerprint();
        let c = v
            .check(&(2, &["U1", "a@b.com", "Smyth"][..]))
            .unwrap()
            .fingerprint();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn plain_emails_are_judged_as_the_parser_judges_them() {
        let plain = [
            "ann@example.com",
            "Ann.Lee+tag@Sub.Example-1.COM",
            "o'brien@example.ie",
            "a.b@c",
            "x@a-b.co",
        ];
        for v in plain {
            assert!(plain_email(v) && parsed_email(v), "{v:?}");
        }
        // Not plain: refused, or left to the full parser.
        let other = [
            "",
            "@example.com",
            "ann@",
            "ann@example",
            ".ann@example.com",
            "ann.@example.com",
            "a..b@example.com",
            "ann@-example.com",
            "ann@example-.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@example.com.",
            "A@.",
            "a@b@example.com",
            "ann lee@example.com",
            "\"ann lee\"@example.com",
            "Ann <ann@example.com>",
            "ann@[10.0.0.1]",
            "anné@example.com",
            "ann@exämple.com",
            "ann@ex_ample.com",
        ];
        for v in other {
            assert!(!plain_email(v), "{v:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("ann@{}.com", "a".repeat(64));
        let long_domain = format!("ann@{}com", "abcdefghi.".repeat(26));
        for v in [long_local, long_label, long_domain] {
            assert!(!plain_email(&v) && !parsed_email(&v), "{v:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// Whatever the fast path accepts, the parser's rule accepts.
        #[test]
        fn plain_emails_are_a_subset_of_the_parsers_rule(v in "[a-zA-Z0-9.@_+!'\\-\" <>\\[\\]é]{0,10}@[a-zA-Z0-9.@_\\-\\[\\]é]{0,14}") {
            if plain_email(&v) {
                proptest::prop_assert!(parsed_email(&v), "{:?}", v);
            }
        }

        /// And it accepts the plain addresses of the full rule, so that
        /// it is the path nearly every row takes.
        #[test]
        fn plain_addresses_take_the_fast_path(v in "[a-z0-9_+-]{1,8}(\\.[a-z0-9_+-]{1,8}){0,2}@[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){1,3}") {
            proptest::prop_assert_eq!(plain_email(&v), parsed_email(&v), "{:?}", v);
        }
    }
}
