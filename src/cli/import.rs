//! `userdrop import`: runs one file through the library's pipeline and
//! prints the outcome (a held job's file is kept for `jobs approve` by
//! `crate::import::keep_if_held`). This file must never hold a rule of the
//! product: what a file may be and what happens to it is decided in
//! `crate::import`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{exit_for, open_store, print_report, tenant_of, usage};
use crate::config::Config;
use crate::import::{self, ImportOptions};

pub(super) fn import_cmd(
    c: &Config,
    tenant: &str,
    file: &Path,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let t = tenant_of(c, tenant)?;
    if !file.is_file() {
        return Err(usage(format!("{} is not a file", file.display())));
    }
    let mut store = open_store(c)?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let opts = ImportOptions {
        file_name: &file_name,
        source: "cli",
        dry_run,
        job: None,
        approved: false,
    };
    let outcome = import::run(&mut store, t, file, &opts)?;
    let report = &outcome.report;
    import::keep_if_held(&store, c, report, file, &file_name)?;
    print_report(report, json)?;
    Ok(exit_for(report.status))
}
