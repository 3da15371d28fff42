//! userdrop's one integration test binary. Each module is one area; `util`
//! holds the shared harness (temp data dirs, configs, running the binary).

mod changes;
mod cli;
mod crash;
mod daemon;
mod fixtures;
mod fuzz;
mod hostile_conn;
mod hostile_dirs;
mod hostile_files;
mod http;
mod layouts;
mod mail;
mod provision;
mod scp_legacy;
mod sftp;
mod trips;
mod trips_graph;
mod trips_ops;
mod trips_words;
mod ui;
mod util;
mod webhooks;
