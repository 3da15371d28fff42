//! `userdrop serve` as the operator starts it: OS signals turned into the
//! daemon's stop token and reload channel, the listeners bound before
//! anything secret is made (a busy port never swallows the one-time demo
//! password or key), the embedded default's demo account and key, then
//! [`Daemon::run`]. This module must never do the daemon's work itself.

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Daemon, DaemonError};
use crate::config::Config;

/// `userdrop serve`: the embedded default's demo account, the SFTP listener,
/// signals (SIGTERM/SIGINT stop, SIGHUP reloads `config_path`), then
/// [`Daemon::run`] until stopped.
pub async fn serve(config_path: Option<PathBuf>, mut config: Config) -> Result<(), DaemonError> {
    use std::io::Write;
    use tokio::signal::unix::{signal, SignalKind};

    let embedded = config_path.is_none();
    // Before anything is announced: a signal sent as soon as the daemon says
    // it listens must find the handlers in place.
    let signal_err = |source| DaemonError::Io {
        what: "installing signal handlers".into(),
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let mut hup = signal(SignalKind::hangup()).map_err(signal_err)?;
    // Bound before the demo account is made: a port already taken must not
    // swallow the one-time password.
    let addr = config.sftp.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let http = match &config.http {
        Some(h) => {
            let addr = h.listen;
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })?;
            let local = l
                .local_addr()
                .map_err(|source| DaemonError::Listen { addr, source })?;
            Some((l, local))
        }
        None => None,
    };
    if embedded {
        let io = |source| DaemonError::Io {
            what: "preparing the demo account".into(),
            source,
        };
        if let Some(password) = crate::demo::ensure_account(&mut config).map_err(io)? {
            println!(
                "demo account created. Its password is shown only now:\n  user {}  password {password}\n  (to make a new one: delete {} and restart)",
                crate::demo::ACCOUNT,
                crate::demo::hash_file(&config).display()
            );
        }
        if let Some(token) = crate::demo::ensure_api_key(&mut config).map_err(io)? {
            println!(
                "demo API key created. It is shown only now:\n  {token}\n  (to make a new one: delete {} and restart)",
                crate::demo::api_key_file(&config).display()
            );
        }
    }
    if let Some((_, local)) = &http {
        let scheme = match config.http.as_ref().and_then(|h| h.tls.as_ref()) {
            Some(_) => "https",
            None => "http",
        };
        println!("userdrop: HTTP listening on {scheme}://{local}");
    }
    println!(
        "userdrop: SFTP listening on {local}; data in {}",
        config.data_dir.display()
    );
    let _ = std::io::stdout().flush();

    let http_listen = config.http.as_ref().map(|h| h.listen);
    let cancel = CancellationToken::new();
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    match Config::load(config_path.as_deref()) {
                        Ok(mut c) => {
                            if embedded {
                                // USERDROP_SFTP_LISTEN and _HTTP_LISTEN stay as they were.
                                c.sftp.listen = addr;
                                if let (Some(h), Some(a)) = (c.http.as_mut(), http_listen) {
                                    h.listen = a;
                                }
                                if let Err(e) = crate::demo::ensure_account(&mut c) {
                                    tracing::error!("reload: the demo account: {e}");
                                }
                                if let Err(e) = crate::demo::ensure_api_key(&mut c) {
                                    tracing::error!("reload: the demo API key: {e}");
                                }
                            }
                            let _ = reload_tx.send(c);
                        }
                        Err(e) => tracing::error!("reload refused, the old configuration stays. {e}"),
                    }
                }
            }
        }
        stop.cancel();
    });
    let mut daemon = Daemon::new(config, Some(listener));
    if let Some((l, _)) = http {
        daemon = daemon.http(l);
    }
    daemon.run(cancel, reload_rx).await
}
