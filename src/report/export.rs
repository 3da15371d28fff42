//! A tenant's users as CSV (`users export`): the header is the tenant's
//! fields in schema order (without the transaction and tenant columns), one
//! row per stored user, written so the file imports again unchanged. This is
//! the one field → cell mapping; every door that exports calls it. This
//! module must never change the store; it streams users as they are read.

use std::io::Write;

use crate::config::Tenant;
use crate::ingest::schema::{FieldDef, FieldKind};
use crate::report::failed_csv::neutralise;
use crate::store::users::{self, User};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Streams `tenant`'s users to `w` as CSV, header first.
pub fn write_users<W: Write>(store: &Store, tenant: &Tenant, w: W) -> Result<(), ExportError> {
    let fields: Vec<&FieldDef> = tenant
        .schema
        .fields
        .iter()
        .filter(|f| !matches!(f.kind, FieldKind::Transaction | FieldKind::Tenant))
        .collect();
    let mut w = csv::Writer::from_writer(w);
    w.write_record(fields.iter().map(|f| f.name.as_str()))?;
    let mut record: Vec<String> = Vec::with_capacity(fields.len());
    let mut write_err: Option<csv::Error> = None;
    users::for_each_user(store, &tenant.name, |u| {
        record.clear();
        for f in &fields {
            record.push(neutralise(&cell(&u, f, &tenant.role_separator)).into_owned());
        }
        if let Err(e) = w.write_record(&record) {
            write_err.get_or_insert(e);
        }
        Ok(())
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    w.flush()?;
    Ok(())
}

/// The cell of field `f` for user `u`, before CSV-injection neutralising.
fn cell(u: &User, f: &FieldDef, role_separator: &str) -> String {
    let bool_text = |b: bool| if b { "true" } else { "false" }.to_string();
    match f.kind {
        FieldKind::UserId => u.user_id.clone().unwrap_or_default(),
        FieldKind::Email => u.email.clone(),
        FieldKind::FirstName => u.first_name.clone().unwrap_or_default(),
        FieldKind::LastName => u.last_name.clone().unwrap_or_default(),
        FieldKind::Enabled => bool_text(u.enabled),
        FieldKind::Roles => u.roles.join(role_separator),
        FieldKind::ReportsTo => u.reports_to.clone().unwrap_or_default(),
        FieldKind::TaskNotification => u.task_notification.clone(),
        FieldKind::NotifyIfNewUser => bool_text(u.notify_if_new_user),
        FieldKind::MobileNumber => u.mobile_number.clone().unwrap_or_default(),
        FieldKind::Country => u.country.clone().unwrap_or_default(),
        FieldKind::State => u.state.clone().unwrap_or_default(),
        FieldKind::LastActiveDate => u.last_active_date.clone().unwrap_or_default(),
        FieldKind::Custom => match u.attributes.get(&f.name) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
        FieldKind::Transaction | FieldKind::Tenant => String::new(),
    }
}
