//! `userdrop changes`: a tenant's change feed as JSON lines, the same
//! objects as the HTTP API's `GET …/changes` (both call `crate::feed`).
//! This file only pages and prints; it must never hold a rule of the feed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::{open_store_read_only, tenant_of};
use crate::config::Config;
use crate::feed::{self, FeedError};

/// How often `--follow` looks for new changes (another process makes them,
/// so there is no event to wait on).
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub(super) fn print(c: &Config, tenant: &str, mut after: i64, follow: bool) -> Result<ExitCode> {
    tenant_of(c, tenant)?;
    let store = open_store_read_only(c)?;
    let mut out = std::io::stdout().lock();
    loop {
        let page = match feed::page(&store, tenant, after, feed::MAX_PAGE) {
            Ok(p) => p,
            Err(e @ FeedError::Behind { .. }) => {
                eprintln!("userdrop: {e}");
                return Ok(ExitCode::from(1));
            }
            Err(FeedError::Store(e)) => return Err(e.into()),
        };
        for change in &page.changes {
            serde_json::to_writer(&mut out, change)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        let full = page.changes.len() as i64 == feed::MAX_PAGE;
        after = page.next;
        if full {
            continue;
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}
