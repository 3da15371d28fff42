//! The fields a users file can carry and the header names accepted for each
//! (PossibleNames, docs/formats.md#header-names-per-field), merged with a tenant's extra names and its own
//! fields. A `Schema` is built once per tenant when the config is validated,
//! so a name that would map to two fields is a config error, not a surprise
//! at import time. This module must never look at a file's contents.

use std::collections::HashMap;

/// The built-in fields. `Custom` fields are a tenant's own and are kept in
/// the user's `attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    UserId,
    Email,
    FirstName,
    LastName,
    Enabled,
    Roles,
    ReportsTo,
    TaskNotification,
    Transaction,
    NotifyIfNewUser,
    MobileNumber,
    Country,
    State,
    LastActiveDate,
    Tenant,
    Custom,
}

/// Built-in fields in template order, with their default PossibleNames.
pub const BUILTIN: &[(FieldKind, &str, &[&str])] = &[
    (
        FieldKind::UserId,
        "user_id",
        &[
            "userId",
            "user id",
            "username",
            "user name",
            "login",
            "login id",
            "uid",
            "employee id",
            "employee number",
            "employee #",
            "samaccountname",
            "associate id",
        ],
    ),
    (
        FieldKind::Email,
        "email",
        &[
            "email",
            "e-mail",
            "email address",
            "e-mail address",
            "mail",
            "work email",
            "primary email",
            "primary work email",
        ],
    ),
    (
        FieldKind::FirstName,
        "first_name",
        &[
            "firstName",
            "first name",
            "given name",
            "forename",
            "first",
            "legal first name",
        ],
    ),
    (
        FieldKind::LastName,
        "last_name",
        &[
            "lastName",
            "last name",
            "surname",
            "family name",
            "last",
            "legal last name",
        ],
    ),
    (
        FieldKind::Enabled,
        "enabled",
        &[
            "enabled",
            "active",
            "status",
            "is active",
            "account enabled",
            "enabled user",
            "active status",
            "position status",
        ],
    ),
    (
        FieldKind::Roles,
        "roles",
        &["roles", "role", "groups", "group"],
    ),
    (
        FieldKind::ReportsTo,
        "reports_to",
        &[
            "reportsTo",
            "reports to",
            "manager",
            "manager id",
            "manager user id",
            "supervisor",
            "manager email",
            "manager employee id",
            "supervisor eid",
            "reports to associate id",
        ],
    ),
    (
        FieldKind::TaskNotification,
        "task_notification",
        &["taskNotification", "task notifications"],
    ),
    (
        FieldKind::Transaction,
        "transaction",
        &["transaction", "action", "operation"],
    ),
    (
        FieldKind::NotifyIfNewUser,
        "notify_if_new_user",
        &["notifyIfNewUser", "notify new user", "send invitation"],
    ),
    (
        FieldKind::MobileNumber,
        "mobile_number",
        &[
            "mobileNumber",
            "mobile",
            "phone",
            "mobile phone",
            "phone number",
            "cell",
            "cell phone",
        ],
    ),
    (FieldKind::Country, "country", &["country", "country code"]),
    (FieldKind::State, "state", &["state", "region", "province"]),
    (
        FieldKind::LastActiveDate,
        "last_active_date",
        &["lastActiveDate", "last active", "last active date"],
    ),
    (FieldKind::Tenant, "tenant", &["tenant"]),
];

/// Which field identifies a user across imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    UserId,
    Email,
    MobileNumber,
}

impl KeyField {
    pub fn kind(self) -> FieldKind {
        match self {
            KeyField::UserId => FieldKind::UserId,
            KeyField::Email => FieldKind::Email,
            KeyField::MobileNumber => FieldKind::MobileNumber,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyField::UserId => "user_id",
            KeyField::Email => "email",
            KeyField::MobileNumber => "mobile_number",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// The field's canonical name, used in reason codes (`missing_email`).
    pub name: String,
    pub kind: FieldKind,
    pub possible_names: Vec<String>,
    /// The column must be in the file and every row must have a value.
    pub required: bool,
    /// Longest accepted value, in characters.
    pub max_len: usize,
}

/// A tenant's extra configuration for one field.
#[derive(Debug, Clone, Default)]
pub struct FieldSettings {
    pub possible_names: Vec<String>,
    pub required: Option<bool>,
    pub max_len: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub fields: Vec<FieldDef>,
    pub key: KeyField,
    by_name: HashMap<String, usize>,
}

/// How headers are compared: case-insensitive, ignoring spaces, `_`, `-`
/// and `.`, ignoring bracketed annotations (`Email Address [Required]`,
/// `Status [READ ONLY]`) and a section prefix ending in `:` (`Work Contact:
/// Work Email`).
pub fn normalize_header(name: &str) -> String {
    let mut plain = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let tail = match plain.rsplit_once(':') {
        Some((_, tail)) if !tail.trim().is_empty() => tail,
        _ => plain.as_str(),
    };
    tail.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\u{a0}'))
        .flat_map(char::to_lowercase)
        .collect()
}

pub const DEFAULT_MAX_LEN: usize = 256;

impl Schema {
    /// Builds the schema of a tenant. `extra` maps a field name (built-in or
    /// the tenant's own) to its settings. Every problem is returned.
    pub fn build(key: KeyField, extra: &[(String, FieldSettings)]) -> Result<Schema, Vec<String>> {
        let mut problems = Vec::new();
        let mut fields: Vec<FieldDef> = BUILTIN
            .iter()
            .map(|(kind, name, names)| {
                let mut possible: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                possible.push(name.to_string());
                FieldDef {
                    name: name.to_string(),
                    kind: *kind,
                    possible_names: possible,
                    required: match kind {
                        FieldKind::Email => true,
                        FieldKind::UserId => key == KeyField::UserId,
                        FieldKind::MobileNumber => key == KeyField::MobileNumber,
                        _ => false,
                    },
                    max_len: DEFAULT_MAX_LEN,
                }
            })
            .collect();

        for (name, settings) in extra {
            if let Some(def) = fields
                .iter_mut()
                .find(|f| f.name == *name && f.kind != FieldKind::Custom)
            {
                if settings.required.is_some() || settings.max_len.is_some() {
                    problems.push(format!(
                        "fields.{name}: `required` and `max_len` can only be set on the tenant's own fields; \
                         for the built-in field {name} only `possible_names` can be added"
                    ));
                }
                def.possible_names
                    .extend(settings.possible_names.iter().cloned());
                continue;
            }
            if !valid_field_name(name) {
                problems.push(format!(
                    "fields.{name}: a field name may use only lower-case letters, digits and `_`, and start with a letter"
                ));
                continue;
            }
            let max_len = settings.max_len.unwrap_or(DEFAULT_MAX_LEN);
            if max_len == 0 {
                problems.push(format!("fields.{name}.max_len must be at least 1"));
            }
            let mut possible = settings.possible_names.clone();
            possible.push(name.clone());
            fields.push(FieldDef {
                name: name.clone(),
                kind: FieldKind::Custom,
                possible_names: possible,
                required: settings.required.unwrap_or(false),
                max_len,
            });
        }

        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            for n in &f.possible_names {
                let norm = normalize_header(n);
                if norm.is_empty() {
                    problems.push(format!(
                        "fields.{}: an accepted name cannot be empty",
                        f.name
                    ));
                    continue;
                }
                match by_name.get(&norm) {
                    Some(&j) if j != i => problems.push(format!(
                        "fields.{}: the name {n:?} is already accepted for field {}; a header must mean one field",
                        f.name, fields[j].name
                    )),
                    _ => {
                        by_name.insert(norm, i);
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Schema {
                fields,
                key,
                by_name,
            })
        } else {
            Err(problems)
        }
    }

    /// The field a header cell names, if any.
    pub fn lookup(&self, header: &str) -> Option<usize> {
        self.by_name.get(&normalize_header(header)).copied()
    }

    pub fn field(&self, kind: FieldKind) -> Option<usize> {
        self.fields.iter().position(|f| f.kind == kind)
    }

    /// The header row of a fresh file (`userdrop template`): the key, the
    /// required fields, then every other field, by canonical name.
    pub fn template_header(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        out.push(self.key.name());
        for f in &self.fields {
            if !out.contains(&f.name.as_str()) && f.kind != FieldKind::Tenant {
                out.push(&f.name);
            }
        }
        out
    }
}

fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matching_ignores_case_spaces_and_punctuation() {
        let s = Schema::build(KeyField::UserId, &[]).unwrap();
        let email = s.field(FieldKind::Email).unwrap();
        for h in [
            "Email",
            " E-Mail ",
            "e_mail",
            "E.mail Address",
            "WORK EMAIL",
        ] {
            assert_eq!(s.lookup(h), Some(email), "{h}");
        }
        assert_eq!(s.lookup("userId"), s.field(FieldKind::UserId));
        assert_eq!(s.lookup("User ID"), s.field(FieldKind::UserId));
        assert_eq!(s.lookup("notes"), None);
    }

    #[test]
    fn tenant_names_and_fields_are_added() {
        let extra = vec![
            (
                "email".to_string(),
                FieldSettings {
                    possible_names: vec!["Courriel".into()],
                    ..Default::default()
                },
            ),
            (
                "department".to_string(),
                FieldSettings {
                    possible_names: vec!["Dept".into()],
                    required: Some(true),
                    max_len: Some(10),
                },
            ),
        ];
        let s = Schema::build(KeyField::UserId, &extra).unwrap();
        assert_eq!(s.lookup("courriel"), s.field(FieldKind::Email));
        let dept = s.lookup("DEPT").unwrap();
        assert_eq!(s.fields[dept].name, "department");
        assert!(s.fields[dept].required);
        assert_eq!(s.fields[dept].max_len, 10);
    }

    #[test]
    fn a_name_claimed_by_two_fields_is_refused() {
        let extra = vec![(
            "department".to_string(),
            FieldSettings {
                possible_names: vec!["Mail".into()],
                ..Default::default()
            },
        )];
        let err = Schema::build(KeyField::UserId, &extra).unwrap_err();
        assert!(
            err[0].contains("already accepted for field email"),
            "{err:?}"
        );
    }

    #[test]
    fn required_columns_follow_the_key() {
        let s = Schema::build(KeyField::Email, &[]).unwrap();
        assert!(!s.fields[s.field(FieldKind::UserId).unwrap()].required);
        let s = Schema::build(KeyField::MobileNumber, &[]).unwrap();
        assert!(s.fields[s.field(FieldKind::MobileNumber).unwrap()].required);
        assert!(!s.fields[s.field(FieldKind::UserId).unwrap()].required);
        assert_eq!(s.template_header()[0], "mobile_number");
    }
}
