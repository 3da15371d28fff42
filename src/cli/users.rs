//! `userdrop users`: the tenant's users as CSV. This file only opens the
//! output and prints; it must never hold a rule of the product (which field
//! becomes which cell is the library's).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::{open_store_read_only, tenant_of};
use crate::config::Config;
use crate::ingest::schema::FieldKind;
use crate::report::failed_csv::neutralise;
use crate::store::users;

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// The tenant's users as CSV, importable again unchanged.
    Export {
        #[arg(long)]
        tenant: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub(super) fn export(c: &Config, tenant: &str, output: Option<&Path>) -> Result<ExitCode> {
    let t = tenant_of(c, tenant)?;
    let store = open_store_read_only(c)?;
    let out: Box<dyn Write> = match output {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let fields: Vec<&crate::ingest::schema::FieldDef> = t
        .schema
        .fields
        .iter()
        .filter(|f| !matches!(f.kind, FieldKind::Transaction | FieldKind::Tenant))
        .collect();
    let mut w = csv::Writer::from_writer(out);
    w.write_record(fields.iter().map(|f| f.name.as_str()))?;
    let bool_text = |b: bool| if b { "true" } else { "false" }.to_string();
    let mut record: Vec<String> = Vec::with_capacity(fields.len());
    let mut write_err: Option<csv::Error> = None;
    users::for_each_user(&store.conn, tenant, |u| {
        record.clear();
        for f in &fields {
            let v = match f.kind {
                FieldKind::UserId => u.user_id.clone().unwrap_or_default(),
                FieldKind::Email => u.email.clone(),
                FieldKind::FirstName => u.first_name.clone().unwrap_or_default(),
                FieldKind::LastName => u.last_name.clone().unwrap_or_default(),
                FieldKind::Enabled => bool_text(u.enabled),
                FieldKind::Roles => u.roles.join(&t.role_separator),
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
            };
            record.push(neutralise(&v).into_owned());
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
    Ok(ExitCode::SUCCESS)
}
