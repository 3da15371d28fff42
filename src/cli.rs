//! The `userdrop` command line (docs/behaviour.md#command-line): clap definitions and the small
//! glue that turns each command into library calls and prints the result.
//! Exit codes: 0 ok, 1 the file or job failed, 2 usage or config error. This
//! is the only module that uses `anyhow`; it must never hold business rules.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat};
use crate::import::{self, ImportOptions};
use crate::ingest::schema::FieldKind;
use crate::report::failed_csv::neutralise;
use crate::report::summary::{JobReport, Status};
use crate::store::{jobs, outbox, users, Store};

#[derive(Debug, Parser)]
#[command(
    name = "userdrop",
    version,
    about = "Customer user directories over SFTP: CSV in, users in SQLite, failed rows by email"
)]
pub struct Cli {
    /// The configuration file. Without it (and without USERDROP_CONFIG), the
    /// embedded default is used: data in ./userdrop-data, a `demo` tenant.
    #[arg(long, global = true, env = "USERDROP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the SFTP server, pickup, imports, reports. Stops on
    /// SIGTERM/SIGINT (the running job finishes), reloads on SIGHUP.
    Serve,
    /// Validate the configuration and report every problem at once.
    CheckConfig,
    /// Print the commented example configuration.
    DefaultConfig,
    /// Read a password (no echo; or one line from stdin) and print its argon2id hash.
    Passwd,
    /// Print the SFTP host key's fingerprint and public key, for customers to pin
    /// (the key is generated on first use).
    HostKey,
    /// Run one file through the pipeline.
    Import {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        /// Judge the file and report what would happen; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Job history, newest first; `jobs show ID`, `jobs approve ID`.
    Jobs {
        #[arg(long)]
        tenant: Option<String>,
        /// How many jobs to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// Users of a tenant.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Print the header row to start a file from.
    Template {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The mail outbox, newest first: queued, sent and failed messages;
    /// `mail retry ID`, `mail flush`, `mail show ID`.
    Mail {
        /// Only messages in this state.
        #[arg(long, value_enum)]
        state: Option<MailState>,
        /// How many messages to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<MailAction>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MailState {
    Queued,
    Sent,
    Failed,
}

impl MailState {
    fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// Queue a failed (given up) or waiting message again, due now, with a
    /// fresh give_up_after.
    Retry { id: i64 },
    /// Try every queued message once now, then exit: 0 when nothing is left
    /// queued, 1 otherwise. Works with or without the daemon running.
    Flush,
    /// Print a message exactly as it is (or was) sent.
    Show { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// A job's outcome and every failed row.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        /// Print the failed-rows CSV (original columns + row + error) instead.
        #[arg(long, conflicts_with = "json")]
        failed_csv: bool,
    },
    /// Apply a held sync job.
    Approve { id: i64 },
}

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

/// A failure the user caused by how userdrop was called or configured: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Overrides the embedded default's SFTP listen address.
pub const SFTP_LISTEN_ENV: &str = "USERDROP_SFTP_LISTEN";

pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::DefaultConfig => {
            print!("{}", crate::config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Passwd => passwd(),
        Command::Serve => {
            let mut c = Config::load(config_path)?;
            // The embedded default's fixed port may be taken on this machine:
            // USERDROP_SFTP_LISTEN moves it (a config file says `[sftp] listen`).
            if config_path.is_none() {
                if let Some(v) = std::env::var_os(SFTP_LISTEN_ENV) {
                    let v = v.to_string_lossy();
                    c.sftp.listen = v.parse().map_err(|_| {
                        usage(format!(
                            "{SFTP_LISTEN_ENV}={v:?} is not an address and port like 127.0.0.1:2222"
                        ))
                    })?;
                }
            }
            init_tracing(c.log_format, "info");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(crate::daemon::serve(config_path.map(Path::to_path_buf), c))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HostKey => {
            let c = load(config_path)?;
            let (fingerprint, public) = crate::sftp::host_key_fingerprint(&c.data_dir)?;
            println!("{fingerprint}");
            println!("{public}");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => {
            let c = load(config_path)?;
            println!(
                "{}: ok ({} tenant{}: {})",
                c.source_name,
                c.tenants.len(),
                if c.tenants.len() == 1 { "" } else { "s" },
                c.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            tenant,
            file,
            dry_run,
            json,
        } => {
            let c = load(config_path)?;
            import_cmd(&c, &tenant, &file, dry_run, json)
        }
        Command::Jobs {
            tenant,
            limit,
            json,
            action,
        } => {
            let c = load(config_path)?;
            match action {
                None => jobs_list(&c, tenant.as_deref(), limit, json),
                Some(JobsAction::Show {
                    id,
                    json,
                    failed_csv,
                }) => jobs_show(&c, id, json, failed_csv),
                Some(JobsAction::Approve { id }) => jobs_approve(&c, id),
            }
        }
        Command::Users {
            action: UsersAction::Export { tenant, output },
        } => {
            let c = load(config_path)?;
            export(&c, &tenant, output.as_deref())
        }
        Command::Mail {
            state,
            limit,
            json,
            action,
        } => {
            let c = load(config_path)?;
            match action {
                None => mail_list(&c, state, limit, json),
                Some(MailAction::Retry { id }) => mail_retry(&c, id),
                Some(MailAction::Flush) => mail_flush(&c),
                Some(MailAction::Show { id }) => mail_show(&c, id),
            }
        }
        Command::Template { tenant } => {
            let c = load(config_path)?;
            let t = match tenant {
                Some(name) => tenant_of(&c, &name)?,
                None => c
                    .tenants
                    .values()
                    .next()
                    .ok_or_else(|| usage("the configuration has no tenant"))?,
            };
            let mut w = csv::Writer::from_writer(io::stdout().lock());
            w.write_record(t.schema.template_header())?;
            w.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config> {
    let c = Config::load(path)?;
    init_tracing(c.log_format, "warn");
    Ok(c)
}

/// Logs go to stderr at `level` (the CLI: warnings; the daemon: info)
/// unless RUST_LOG says otherwise.
fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn tenant_of<'c>(c: &'c Config, name: &str) -> Result<&'c crate::config::Tenant> {
    c.tenant(name).ok_or_else(|| {
        usage(format!(
            "no tenant {name:?} in {}; the tenants are: {}",
            c.source_name,
            c.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

fn open_store(c: &Config) -> Result<Store> {
    Ok(Store::open(&c.db_path())?)
}

/// Read-only commands must not create a store where there is none.
fn open_store_read_only(c: &Config) -> Result<Store> {
    let path = c.db_path();
    if !path.exists() {
        bail!(
            "there is no store at {} yet: nothing has been imported with this configuration",
            path.display()
        );
    }
    Ok(Store::open_read_only(&path)?)
}

fn exit_for(status: Status) -> ExitCode {
    match status {
        Status::Ok => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn print_report(report: &JobReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.human(20));
    }
    Ok(())
}

fn import_cmd(
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
    if let (Status::Held, Some(id)) = (report.status, report.job) {
        // Keep the file for `jobs approve`: the caller's copy may change.
        let dir = c.spool_dir(tenant);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let kept = dir.join(format!("{id}_{file_name}"));
        std::fs::copy(file, &kept)
            .with_context(|| format!("keeping a copy of the held file in {}", kept.display()))?;
        jobs::set_path(&store.conn, id, &kept.to_string_lossy())?;
    }
    print_report(report, json)?;
    Ok(exit_for(report.status))
}

fn jobs_list(c: &Config, tenant: Option<&str>, limit: i64, json: bool) -> Result<ExitCode> {
    if let Some(t) = tenant {
        tenant_of(c, t)?;
    }
    let store = open_store_read_only(c)?;
    let list = jobs::list(&store.conn, tenant, limit)?;
    if json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|j| {
                let report: Option<serde_json::Value> = j
                    .report
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok());
                serde_json::json!({
                    "job": j.id, "tenant": j.tenant, "file": j.file, "source": j.source,
                    "state": j.state, "status": j.status, "created_at": j.created_at,
                    "finished_at": j.finished_at,
                    "counts": report.as_ref().and_then(|r| r.get("counts").cloned()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no jobs yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  file",
        "job", "created", "tenant", "state", "status", "rows", "failed"
    );
    for j in &list {
        let report: Option<JobReport> = j
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let (rows, failed) = report
            .map(|r| (r.counts.rows.to_string(), r.counts.failed.to_string()))
            .unwrap_or_default();
        println!(
            "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  {}",
            j.id,
            j.created_at,
            j.tenant,
            j.state,
            j.status.as_deref().unwrap_or("-"),
            rows,
            failed,
            j.file
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stored_report(
    store: &Store,
    id: i64,
) -> Result<(jobs::JobRow, Option<JobReport>, Vec<jobs::StoredError>)> {
    let job = jobs::get(&store.conn, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
    let stored = crate::report::ledger::stored_report(&store.conn, &job)
        .with_context(|| format!("job {id} has an unreadable report"))?;
    Ok(match stored {
        Some((report, errors)) => (job, Some(report), errors),
        None => (job, None, Vec::new()),
    })
}

fn jobs_show(c: &Config, id: i64, json: bool, failed_csv: bool) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let (job, report, errors) = stored_report(&store, id)?;
    let Some(report) = report else {
        println!(
            "job {id}: {} for tenant {}, {} (from {}), not finished",
            job.file, job.tenant, job.state, job.source
        );
        return Ok(ExitCode::SUCCESS);
    };
    if failed_csv {
        let rows = crate::report::failed_csv::group(&errors);
        crate::report::failed_csv::write(io::stdout().lock(), &report.columns, &rows)?;
    } else if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.human(usize::MAX));
        println!(
            "  state {}, from {}, received {}",
            job.state, job.source, job.created_at
        );
    }
    Ok(exit_for(report.status))
}

fn jobs_approve(c: &Config, id: i64) -> Result<ExitCode> {
    let mut store = open_store(c)?;
    let job = jobs::get(&store.conn, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
    if job.status.as_deref() != Some("held") {
        return Err(usage(format!(
            "job {id} is not held (its status is {}); only held sync jobs can be approved",
            job.status.as_deref().unwrap_or("not decided yet")
        )));
    }
    if let Some(newer) = jobs::newer_applied(&store.conn, &job.tenant, id)? {
        return Err(usage(format!(
            "job {newer} of tenant {} was applied after job {id}; approving the older file would undo it. Upload the file again if it is still wanted",
            job.tenant
        )));
    }
    let t = tenant_of(c, &job.tenant)?;
    let path = PathBuf::from(&job.path);
    if !path.is_file() {
        bail!(
            "the held file of job {id} is no longer at {}",
            path.display()
        );
    }
    let opts = ImportOptions {
        file_name: &job.file,
        source: &job.source,
        dry_run: false,
        job: Some(id),
        approved: true,
    };
    let outcome = import::run(&mut store, t, &path, &opts)?;
    if job.archived_at.is_some() {
        // The daemon's job: its results/ say "held"; write the new outcome
        // under the same names (the .bak/ copy stays where it is).
        let job = jobs::get(&store.conn, id)?.ok_or_else(|| anyhow!("job {id} vanished"))?;
        if let Some((report, errors)) = crate::report::ledger::stored_report(&store.conn, &job)? {
            crate::archive::archive(&c.tenant_root(&job.tenant), &job, &report, &errors)
                .with_context(|| format!("updating results/ of job {id}"))?;
        }
    }
    print_report(&outcome.report, false)?;
    Ok(exit_for(outcome.report.status))
}

fn export(c: &Config, tenant: &str, output: Option<&Path>) -> Result<ExitCode> {
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

fn mail_list(c: &Config, state: Option<MailState>, limit: i64, json: bool) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let list = outbox::list(&store.conn, state.map(MailState::as_str), limit)?;
    if json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "tenant": m.tenant, "job": m.job, "kind": m.kind,
                    "state": m.state, "attempts": m.attempts, "to": m.recipients,
                    "subject": m.subject, "message_id": m.message_id, "bytes": m.size,
                    "created_at": m.created_at,
                    "next_attempt_at": (m.state == "queued").then(|| outbox::ms_text(m.next_attempt_at)),
                    "expires_at": outbox::ms_text(m.expires_at),
                    "last_attempt_at": m.last_attempt_at, "sent_at": m.sent_at,
                    "failed_at": m.failed_at, "last_error": m.last_error,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no mail");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<20}  {:<12}  {:>6}  {:<10}  {:<6}  {:>5}  {:<20}  subject",
        "id", "created", "tenant", "job", "kind", "state", "tries", "next attempt"
    );
    for m in &list {
        let next = if m.state == "queued" {
            outbox::ms_text(m.next_attempt_at)
        } else {
            "-".to_string()
        };
        println!(
            "{:>6}  {:<20}  {:<12}  {:>6}  {:<10}  {:<6}  {:>5}  {:<20}  {}",
            m.id,
            m.created_at,
            m.tenant,
            m.job.map(|j| j.to_string()).unwrap_or_else(|| "-".into()),
            m.kind,
            m.state,
            m.attempts,
            next,
            m.subject
        );
        println!("{:>8}to {}", "", m.recipients.join(", "));
        if let Some(e) = &m.last_error {
            println!("{:>8}last error: {e}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mail_retry(c: &Config, id: i64) -> Result<ExitCode> {
    let store = open_store(c)?;
    let m = outbox::get(&store.conn, id)?
        .ok_or_else(|| usage(format!("there is no message {id} in the outbox")))?;
    if m.state == "sent" {
        return Err(usage(format!(
            "message {id} was sent at {}; queueing it again would deliver it twice",
            m.sent_at.as_deref().unwrap_or("an earlier time")
        )));
    }
    let now = outbox::now_ms();
    let expires =
        now.saturating_add(i64::try_from(c.mail.give_up_after.as_millis()).unwrap_or(i64::MAX));
    outbox::requeue(&store.conn, id, now, expires)?;
    println!(
        "message {id} is queued again, due now; the daemon sends it within a minute, or run `userdrop mail flush`"
    );
    Ok(ExitCode::SUCCESS)
}

fn mail_flush(c: &Config) -> Result<ExitCode> {
    // Creates the store if needed: flushing an empty outbox is not an error.
    drop(open_store(c)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pass = rt.block_on(crate::mail::sender::deliver(&c.db_path(), &c.mail, true))?;
    let store = open_store_read_only(c)?;
    let queued = outbox::count(&store.conn, "queued")?;
    println!(
        "sent {}, will retry {}, gave up {}; {} queued",
        pass.sent, pass.retrying, pass.failed, queued
    );
    Ok(if queued == 0 && pass.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn mail_show(c: &Config, id: i64) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let bytes = outbox::message(&store.conn, id)?
        .ok_or_else(|| usage(format!("there is no message {id} in the outbox")))?;
    io::stdout().lock().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn passwd() -> Result<ExitCode> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let password = if io::stdin().is_terminal() {
        let a = rpassword::prompt_password("password: ")?;
        let b = rpassword::prompt_password("again: ")?;
        if a != b {
            return Err(usage("the two passwords differ"));
        }
        a
    } else {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err(usage("the password is empty"));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow!("hashing failed: {e}"))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}
