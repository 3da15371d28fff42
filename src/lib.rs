//! userdrop: customer organisations hand over their user directory as CSV
//! files; userdrop validates every row, applies the users to SQLite and
//! reports the rows that failed.
//!
//! The crate is laid out by concern, each module knowing only those below it.
//! The order, bottom up: [`template`], [`ingest`] and [`writers`] import no
//! other module; [`config`] sits on them, [`store`] on `ingest`; then
//! [`report`], [`mail`], [`webhook`], [`import`]; [`sftp`] and [`pickup`] (which never
//! import each other, only `ingest`, `config` and `writers` below them);
//! [`feed`] and [`name_index`] on `store`; [`archive`], [`intake`], [`worker`]; [`http`] (on the worker, sftp's
//! bans and the store); [`daemon`]; [`cli`] on top.
//! - [`template`]: the invitation templates (`{first_name}` …), parsed once
//!   with the config, filled by the mail.
//! - [`config`]: the TOML configuration, read in two stages (raw serde
//!   structs, then a validated [`config::Config`] with every problem listed).
//! - [`ingest`]: bytes → records → mapped headers → judged rows; no I/O but
//!   reading the file, no knowledge of SFTP or the store.
//! - [`store`]: SQLite (WAL): users, roles, the job ledger, the change
//!   ledger; no knowledge of files.
//! - [`feed`]: the change feed (a page of changes with the users as stored).
//! - [`import`]: the sequence that runs one file through `ingest` into
//!   `store` in one transaction; shared by the CLI and the daemon's worker.
//! - [`report`]: the job outcome as JSON and text, and the failed-rows CSV.
//! - [`mail`]: failure reports and invitations, queued in the store with the
//!   job that caused them and delivered by a sender task (SMTP or `.eml`).
//! - [`webhook`]: each decided job POSTed, signed (HMAC-SHA256), to the
//!   tenant's receivers; queued with the job like mail, retried like mail.
//! - [`sftp`]: the embedded SFTP server (russh): accounts jailed in their
//!   tenant roots, upload completion events for the daemon.
//! - [`pickup`]: the four ways a file reaches processing, into one queue.
//! - [`writers`]: the SFTP write handles open right now, by file: a file is
//!   complete only with none open, and a claim revokes them.
//! - [`intake`]: a file that arrives whole through a door other than an
//!   inbox (HTTP) becomes a job: spooled, fsynced, committed, then queued.
//! - [`http`]: the HTTP API (axum): uploads, job status, users, health,
//!   metrics, OpenAPI, and the tenant admin's web page (`http::ui`); it
//!   calls the library the CLI calls.
//! - [`worker`]: one job's state machine: claim, apply, archive.
//! - [`name_index`]: keeps the web page's name index up with the change
//!   ledger in `serve` (the import never writes it).
//! - [`archive`]: `.bak/` and `results/` in the tenant root, and retention.
//! - [`daemon`]: `userdrop serve`, wiring all of the above; signals, reload.
//! - [`cli`]: the `userdrop` commands, the only place with `anyhow`.

pub mod archive;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod feed;
pub mod http;
pub mod import;
pub mod ingest;
pub mod intake;
pub mod mail;
pub mod name_index;
pub mod pickup;
pub mod provision;
pub mod report;
pub mod sftp;
pub mod store;
pub mod template;
pub mod webhook;
pub mod worker;
pub mod writers;
