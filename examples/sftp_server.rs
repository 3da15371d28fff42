//! A standalone runner of the embedded SFTP server, for benchmarks and
//! manual tests:
//!
//! ```text
//! cargo run --release --example sftp_server -- --config PATH [--listen ADDR]
//! ```
//!
//! Prints `listening on ADDR` on stdout once bound, logs (and every upload
//! event) to stderr, exits on SIGTERM, SIGINT or end of stdin.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use userdrop::config::Config;
use userdrop::sftp::SftpServer;

#[derive(Parser)]
struct Args {
    /// The userdrop configuration (tenants, accounts, [sftp]).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `[sftp] listen` (e.g. 127.0.0.1:0 for any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = Config::load(Some(&args.config))?;
    let server = SftpServer::new(&config)?;
    let addr = args.listen.unwrap_or(config.sftp.listen);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;

    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            eprintln!("event: {event:?}");
        }
    });
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let stdin_eof = async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = stdin_eof => {}
        }
        stop.cancel();
    });
    server.run(listener, tx, shutdown).await?;
    // Not a return: the runtime would wait for the blocking stdin read.
    std::process::exit(0)
}
