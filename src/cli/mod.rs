//! The `userdrop` command line (docs/behaviour.md#command-line): the clap
//! definitions and the dispatch; one file per command group (`import`,
//! `jobs`, `users`, `mail`, `webhooks`, `keys` for passwd and host-key, `config` for
//! check-config, default-config and template), `serve` here.
//! Exit codes: 0 ok, 1 the file or job failed, 2 usage or config error. This
//! is the only module that uses `anyhow`. It turns each command into library
//! calls and prints the result; it must never hold a rule of the product,
//! since the other doors (an HTTP API, a web page) must reach the same
//! decisions through the same library calls.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat};
use crate::report::summary::{JobReport, Status};
use crate::store::Store;

mod changes;
mod config;
mod import;
mod jobs;
mod keys;
mod mail;
mod provision;
mod users;
mod webhooks;

pub use jobs::JobsAction;
pub use mail::{MailAction, MailState};
pub use provision::ProvisionAction;
pub use users::UsersAction;
pub use webhooks::WebhooksAction;

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
pub enum ApiKeyAction {
    /// Make a new key: 256 random bits, printed once; only its hash goes in
    /// the config.
    New {
        #[arg(long)]
        tenant: String,
        /// Who uses the key (shown in the logs), like "hr-nightly".
        #[arg(long)]
        name: String,
    },
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
    /// API keys for the HTTP API: `api-key new --tenant T --name N` prints a
    /// new token once and the config lines to paste.
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
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
        /// How many jobs to list (at least 1).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// A tenant's change feed as JSON lines, oldest first: every change
    /// to a user after `--after` (a seq); `--follow` waits for more.
    Changes {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Keep running and print changes as jobs make them.
        #[arg(long)]
        follow: bool,
    },
    /// SCIM provisioning into the application ([tenants.T.provision]):
    /// `provision status`, `provision resync --tenant T`.
    Provision {
        #[command(subcommand)]
        action: ProvisionAction,
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
        /// The documented header of an export layout instead (okta,
        /// google_workspace, entra, oneroster, active_directory, bamboohr,
        /// workday, adp).
        #[arg(long)]
        layout: Option<String>,
    },
    /// The mail outbox, newest first: queued, sent and failed messages;
    /// `mail retry ID`, `mail flush`, `mail show ID`.
    Mail {
        /// Only messages in this state.
        #[arg(long, value_enum)]
        state: Option<MailState>,
        /// How many messages to list (at least 1).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<MailAction>,
    },
    /// The webhook deliveries (`webhooks list [--state queued|sent|failed]`).
    Webhooks {
        #[command(subcommand)]
        action: WebhooksAction,
    },
}

/// A failure the user caused by how userdrop was called or configured: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Overrides the embedded default's SFTP listen address.
pub const SFTP_LISTEN_ENV: &str = "USERDROP_SFTP_LISTEN";

/// Overrides the embedded default's HTTP listen address.
pub const HTTP_LISTEN_ENV: &str = "USERDROP_HTTP_LISTEN";

/// Writes a line (or, with `out!(no_newline; ...)`, text) to standard
/// output, returning the error instead of panicking when the reader went
/// away (`userdrop jobs | head -1`).
macro_rules! out {
    (no_newline; $($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use out;

/// Whether the command failed only because standard output was closed by
/// its reader (`| head`): then userdrop exits quietly and successfully, as
/// ripgrep does.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use crate::report::export::ExportError;
    let of_csv = |c: &csv::Error| match c.kind() {
        csv::ErrorKind::Io(io) => Some(io.kind()),
        _ => None,
    };
    err.chain().any(|e| {
        let kind = if let Some(io) = e.downcast_ref::<std::io::Error>() {
            Some(io.kind())
        } else if let Some(c) = e.downcast_ref::<csv::Error>() {
            of_csv(c)
        } else {
            match e.downcast_ref::<ExportError>() {
                Some(ExportError::Io(io)) => Some(io.kind()),
                Some(ExportError::Csv(c)) => of_csv(c),
                _ => None,
            }
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

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
        Command::DefaultConfig => config::default_config(),
        Command::Passwd => keys::passwd(),
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
                if let (Some(v), Some(h)) = (std::env::var_os(HTTP_LISTEN_ENV), c.http.as_mut()) {
                    let v = v.to_string_lossy();
                    h.listen = v.parse().map_err(|_| {
                        usage(format!(
                            "{HTTP_LISTEN_ENV}={v:?} is not an address and port like 127.0.0.1:8080"
                        ))
                    })?;
                }
            }
            // Before anything is bound or written: one daemon per data_dir.
            let _lock = lock_data_dir(&c.data_dir)?;
            init_tracing(c.log_format, "info");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(crate::daemon::serve(config_path.map(Path::to_path_buf), c))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HostKey => keys::host_key(config_path),
        Command::ApiKey {
            action: ApiKeyAction::New { tenant, name },
        } => keys::api_key_new(config_path, &tenant, &name),
        Command::CheckConfig => config::check_config(config_path),
        Command::Import {
            tenant,
            file,
            dry_run,
            json,
        } => {
            let c = load(config_path)?;
            import::import_cmd(&c, &tenant, &file, dry_run, json)
        }
        Command::Jobs {
            tenant,
            limit,
            json,
            action,
        } => {
            let c = load(config_path)?;
            match action {
                None => jobs::jobs_list(&c, tenant.as_deref(), limit, json),
                Some(JobsAction::Show {
                    id,
                    json,
                    failed_csv,
                    changes,
                }) => jobs::jobs_show(&c, id, json, failed_csv, changes),
                Some(JobsAction::Approve { id }) => jobs::jobs_approve(&c, id),
            }
        }
        Command::Changes {
            tenant,
            after,
            follow,
        } => {
            let c = load(config_path)?;
            changes::print(&c, &tenant, after, follow)
        }
        Command::Users {
            action: UsersAction::Export { tenant, output },
        } => {
            let c = load(config_path)?;
            users::export(&c, &tenant, output.as_deref())
        }
        Command::Mail {
            state,
            limit,
            json,
            action,
        } => {
            let c = load(config_path)?;
            match action {
                None => mail::mail_list(&c, state, limit, json),
                Some(MailAction::Retry { id }) => mail::mail_retry(&c, id),
                Some(MailAction::Flush) => mail::mail_flush(&c),
                Some(MailAction::Show { id }) => mail::mail_show(&c, id),
            }
        }
        Command::Webhooks { action } => webhooks::run(&load(config_path)?, action),
        Command::Provision { action } => {
            let c = load(config_path)?;
            match action {
                ProvisionAction::Status {
                    tenant,
                    errors,
                    json,
                } => provision::status(&c, tenant.as_deref(), errors, json),
                ProvisionAction::Resync { tenant } => provision::resync(&c, &tenant),
            }
        }
        Command::Template { tenant, layout } => {
            config::template(config_path, tenant.as_deref(), layout.as_deref())
        }
    }
}

/// The lock file `serve` holds in its data_dir.
pub const LOCK_FILE: &str = "userdrop.lock";

/// Takes the exclusive `flock` on `<data_dir>/userdrop.lock` and writes
/// this process's PID in it, or fails naming the PID of the `serve` that
/// holds it. The lock lasts as long as the returned file is open; the
/// kernel releases it when the process ends, however it ends (SIGKILL too),
/// so a stale lock file never blocks a restart.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data_dir {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = match holder.trim() {
                "" => "not yet written".to_string(),
                pid => pid.to_string(),
            };
            bail!(
                "another `userdrop serve` is running on data_dir {} (PID {pid}, holding {}): \
                 stop it first, or give this one a data_dir of its own",
                data_dir.display(),
                path.display()
            );
        }
        Err(e) => {
            return Err(io::Error::from(e)).with_context(|| format!("locking {}", path.display()))
        }
    }
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .with_context(|| format!("writing the PID into {}", path.display()))?;
    Ok(file)
}

fn load(path: Option<&Path>) -> Result<Config> {
    let c = Config::load(path)?;
    init_tracing(c.log_format, "warn");
    Ok(c)
}

/// Logs go to stderr at `level` (the CLI: warnings; the daemon: info)
/// unless RUST_LOG says otherwise, each line through [`EscapingWriter`]. No
/// colours: the writer escapes every ESC, the formatter's own included.
fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| EscapingWriter(io::stderr()));
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Where every log line is written: control characters in it (a file name
/// with a newline or an escape sequence, anything a peer sent) come out
/// escaped, so that no field can split a line, forge one, or drive the
/// terminal. The formatter writes a whole line at once; its final newline
/// is the only one kept.
struct EscapingWriter<W>(W);

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, newline) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (buf, false),
        };
        let text = String::from_utf8_lossy(body);
        let mut line = crate::report::table::escape_controls(&text).into_owned();
        if newline {
            line.push('\n');
        }
        self.0.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
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
        out!("{}", serde_json::to_string_pretty(report)?);
    } else {
        out!(no_newline; "{}", report.human(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_come_out_whole_with_controls_escaped_and_json_stays_json() {
        let mut out = Vec::new();
        EscapingWriter(&mut out)
            .write_all(b"INFO archived file=evil\nINJECTED\r\x1b[31m\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INFO archived file=evil\\nINJECTED\\r\\u001b[31m\n"
        );

        // serde_json leaves DEL and C1 raw: escaped, the line still parses
        // and reads back the same name.
        let name = "a\u{7f}\u{9b}b\n";
        let line = format!("{}\n", serde_json::json!({ "file": name }));
        let mut out = Vec::new();
        EscapingWriter(&mut out).write_all(line.as_bytes()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.trim_end_matches('\n').chars().any(char::is_control),
            "{text:?}"
        );
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["file"], name);
    }
}
