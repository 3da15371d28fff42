//! The legacy SCP protocol, sink side only: what `scp -O` (and OpenSSH
//! before 9.0, and many Windows and HR servers' scripts) runs on the server
//! as an exec of `scp -t [-p] [-d] [-r] [-v] <path>`.
//!
//! Its role: read the client's records (`C` files, `T` times, `D`/`E`
//! directories), answer each with `\0` or an error line the client prints
//! (`\x01` a warning, `\x02` fatal), and make every write through the
//! session's own [`SftpSession`] (open, write, fsetstat, close, mkdir), so
//! that an SCP upload gets exactly the SFTP side's jail, read-only
//! directories, limits, completion rule and log lines: a file is complete
//! when its bytes ended with the client's final `\0` and its handle closed.
//! What it must never do: run a shell or any command but this sink, send a
//! file back (`scp -f`, source mode), write outside the tenant root or
//! follow a symlink (the session refuses; `..` in the target is refused
//! here already), report a file complete whose bytes did not all arrive,
//! or hold more than one chunk of a file in memory.

use std::path::Path;

use russh_sftp::protocol::{FileAttributes, OpenFlags};
use russh_sftp::server::{Handler, StatusReply};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::jail;
use super::session::SftpSession;

/// Longest record line read (OpenSSH's sink reads at most 2 KiB).
const MAX_RECORD: usize = 4096;
/// Bytes of a file read and written at once.
const CHUNK: usize = 64 * 1024;
/// Nesting of `D` records at most.
const MAX_DEPTH: usize = 32;

/// An exec command the server accepts: the SCP sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpCommand {
    /// The target as the client wrote it (`.` for the inbox root).
    pub target: String,
    /// `-p`: `T` records (times) come before files.
    pub preserve: bool,
    /// `-d`: the target must be a directory (several files were named).
    pub target_is_dir: bool,
    /// `-r`: `D`/`E` records (directories) may come.
    pub recursive: bool,
}

/// Why an exec command is refused (it is not the SCP sink).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("not an scp command")]
    NotScp,
    #[error("scp -f (download) is not offered: only uploads (scp -t)")]
    Source,
    #[error("scp without -t")]
    NoSink,
    #[error("unknown scp option -{0}")]
    Option(char),
    #[error("scp -t needs exactly one target path")]
    Targets,
    #[error("shell syntax ({0:?}) is not accepted: there is no shell")]
    Shell(char),
    #[error("unbalanced quotes")]
    Quotes,
    #[error("the command is not UTF-8")]
    Utf8,
}

/// Splits a command line into words as a POSIX shell would for plain words,
/// `'…'`, `"…"` and `\x`; anything a shell would expand or run
/// (`$`, `` ` ``, `;`, `|`, `&`, redirections, globs, `~` but a leading
/// one) is refused rather than taken literally.
fn words(line: &str) -> Result<Vec<String>, CommandError> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                out.extend(cur.take());
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(CommandError::Quotes),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(CommandError::Quotes),
                        },
                        Some(c @ ('$' | '`')) => return Err(CommandError::Shell(c)),
                        Some(c) => w.push(c),
                        None => return Err(CommandError::Quotes),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => cur.get_or_insert_with(String::new).push(c),
                None => return Err(CommandError::Quotes),
            },
            '~' if cur.is_none() => cur = Some("~".into()),
            c if "$`;|&<>()*?[]{}~#!\n\r".contains(c) => return Err(CommandError::Shell(c)),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Ok(out)
}

/// Parses an exec request: `scp -t [-p] [-d] [-r] [-v] [--] <path>`, the
/// options in any order or combined (`-pt`). Anything else is refused.
pub fn parse_command(data: &[u8]) -> Result<ScpCommand, CommandError> {
    let line = std::str::from_utf8(data).map_err(|_| CommandError::Utf8)?;
    let words = words(line.trim_end_matches(['\n', '\r']))?;
    let Some((program, args)) = words.split_first() else {
        return Err(CommandError::NotScp);
    };
    if program != "scp" {
        return Err(CommandError::NotScp);
    }
    let (mut sink, mut cmd) = (
        false,
        ScpCommand {
            target: String::new(),
            preserve: false,
            target_is_dir: false,
            recursive: false,
        },
    );
    let mut rest = args;
    while let Some((arg, tail)) = rest.split_first() {
        if arg == "--" {
            rest = tail;
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        for f in flags.chars() {
            match f {
                't' => sink = true,
                'f' => return Err(CommandError::Source),
                'p' => cmd.preserve = true,
                'd' => cmd.target_is_dir = true,
                'r' => cmd.recursive = true,
                'v' => {}
                other => return Err(CommandError::Option(other)),
            }
        }
        rest = tail;
    }
    if !sink {
        return Err(CommandError::NoSink);
    }
    let [target] = rest else {
        return Err(CommandError::Targets);
    };
    cmd.target = target.clone();
    Ok(cmd)
}

/// Runs the sink on an exec channel, then answers as a command would: the
/// exit status (0 after a good upload, 1 otherwise), EOF and close. The
/// session is dropped before the status goes out, so a file cut off is
/// reported incomplete first.
pub async fn serve_channel(
    channel: russh::Channel<russh::server::Msg>,
    cmd: ScpCommand,
    ctx: SinkContext,
    mut sftp: SftpSession,
) {
    let (mut rd, wr) = channel.split();
    let status = run_sink(&cmd, &ctx, &mut sftp, rd.make_reader(), wr.make_writer()).await;
    drop(sftp);
    tracing::info!(tenant = %ctx.tenant, account = %ctx.account, status, "scp ended");
    let _ = wr.exit_status(status).await;
    let _ = wr.eof().await;
    let _ = wr.close().await;
}

/// What the sink works with besides the channel.
#[derive(Debug, Clone)]
pub struct SinkContext {
    pub tenant: String,
    pub account: String,
    pub max_file_size: u64,
}

/// How a record loop ended early.
enum Stop {
    /// The client is gone (its input ended mid-record or mid-file).
    Lost,
    /// A fatal error was sent (`\x02`).
    Fatal,
}

type Step<T> = Result<T, Stop>;

/// Runs the sink over one exec channel's input and output until the
/// client's end of input or a fatal error. Returns the exit status to send:
/// 0 when every file arrived, 1 otherwise. A file cut off mid-way is left
/// open in `sftp`: dropping the session reports it incomplete.
pub async fn run_sink<R, W>(
    cmd: &ScpCommand,
    ctx: &SinkContext,
    sftp: &mut SftpSession,
    input: R,
    output: W,
) -> u32
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sink = Sink {
        cmd,
        ctx,
        sftp,
        input: BufReader::with_capacity(CHUNK, input),
        out: output,
        errors: 0,
        id: 0,
        times: None,
    };
    let r = sink.records().await;
    let _ = sink.out.flush().await;
    match r {
        Ok(()) if sink.errors == 0 => 0,
        Ok(()) | Err(Stop::Fatal) => 1,
        Err(Stop::Lost) => {
            tracing::warn!(tenant = %ctx.tenant, account = %ctx.account,
                "scp: the client's input ended mid-transfer");
            1
        }
    }
}

struct Sink<'a, R, W> {
    cmd: &'a ScpCommand,
    ctx: &'a SinkContext,
    sftp: &'a mut SftpSession,
    input: BufReader<R>,
    out: W,
    errors: u32,
    id: u32,
    /// From the last `T` record, for the next file: (atime, mtime).
    times: Option<(u32, u32)>,
}

/// The message of a session error, as the client reads it.
fn reason(e: &StatusReply) -> String {
    e.error_message
        .clone()
        .unwrap_or_else(|| format!("{:?}", e.status_code))
}

/// A `C`/`D` record: `C0644 <size> <name>`.
fn parse_entry(rec: &str) -> Result<(u64, &str), &'static str> {
    let b = rec.as_bytes();
    if b.len() < 5 || !b[1..5].iter().all(|c| (b'0'..=b'7').contains(c)) {
        return Err("bad mode");
    }
    let rest = rec[5..].strip_prefix(' ').ok_or("mode not delimited")?;
    let (size, name) = rest.split_once(' ').ok_or("size not delimited")?;
    if size.is_empty() || !size.bytes().all(|c| c.is_ascii_digit()) {
        return Err("size not present");
    }
    let size = size.parse::<u64>().map_err(|_| "size out of range")?;
    Ok((size, name))
}

/// A `T` record: `T<mtime> <usec> <atime> <usec>`; (atime, mtime).
fn parse_times(rec: &str) -> Result<(u32, u32), &'static str> {
    let f: Vec<&str> = rec[1..].split(' ').collect();
    let num = |s: &str, max: u64| {
        s.parse::<u64>()
            .ok()
            .filter(|n| *n <= max && s.bytes().all(|c| c.is_ascii_digit()))
    };
    match f[..] {
        [m, mu, a, au] => match (
            num(m, u32::MAX as u64),
            num(mu, 999_999),
            num(a, u32::MAX as u64),
            num(au, 999_999),
        ) {
            (Some(m), Some(_), Some(a), Some(_)) => Ok((a as u32, m as u32)),
            _ => Err("bad times"),
        },
        _ => Err("times not delimited"),
    }
}

/// The client-visible path of the target (`~` is the inbox root), or why
/// it is refused.
fn target_path(target: &str) -> Result<String, String> {
    let t = match target.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => target,
    };
    if t.split('/').any(|c| c == "..") {
        return Err(format!(
            "{target}: a path with \"..\" is not accepted: name a place inside the inbox"
        ));
    }
    let rel = jail::normalize(t).map_err(|e| format!("{target}: {e}"))?;
    Ok(jail::display(&rel))
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Sink<'_, R, W> {
    fn next_id(&mut self) -> u32 {
        self.id = self.id.wrapping_add(1);
        self.id
    }

    async fn send(&mut self, bytes: &[u8]) -> Step<()> {
        match self.out.write_all(bytes).await {
            Ok(()) => self.out.flush().await.map_err(|_| Stop::Lost),
            Err(_) => Err(Stop::Lost),
        }
    }

    async fn ack(&mut self) -> Step<()> {
        self.send(b"\0").await
    }

    /// A warning the client prints; the transfer goes on.
    async fn warn(&mut self, msg: &str) -> Step<()> {
        self.errors += 1;
        tracing::warn!(tenant = %self.ctx.tenant, account = %self.ctx.account,
            "scp: refused: {msg}");
        self.send(format!("\x01scp: {}\n", one_line(msg)).as_bytes())
            .await
    }

    /// A fatal error the client prints; the transfer ends.
    async fn fatal(&mut self, msg: &str) -> Stop {
        self.errors += 1;
        tracing::warn!(tenant = %self.ctx.tenant, account = %self.ctx.account,
            "scp: ended: {msg}");
        match self
            .send(format!("\x02scp: {}\n", one_line(msg)).as_bytes())
            .await
        {
            Ok(()) => Stop::Fatal,
            Err(s) => s,
        }
    }

    /// The next record line without its `\n`; `None` at the client's end.
    async fn line(&mut self) -> Step<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut limited = (&mut self.input).take(MAX_RECORD as u64 + 1);
        let n = limited
            .read_until(b'\n', &mut line)
            .await
            .map_err(|_| Stop::Lost)?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_RECORD {
                return Err(self.fatal("protocol error: record too long").await);
            }
            return Err(Stop::Lost);
        }
        line.pop();
        Ok(Some(line))
    }

    /// Whether `path` is a directory (following no symlink); `None` when
    /// it does not exist, an error when it cannot be told.
    async fn is_dir(&mut self, path: &str) -> Result<Option<bool>, String> {
        let id = self.next_id();
        match self.sftp.stat(id, path.to_string()).await {
            Ok(a) => Ok(Some(
                a.attrs.permissions.unwrap_or(0) & 0o170000 == 0o040000,
            )),
            Err(e) if e.status_code == russh_sftp::protocol::StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(reason(&e)),
        }
    }

    async fn records(&mut self) -> Step<()> {
        let target = match target_path(&self.cmd.target) {
            Ok(t) => t,
            Err(msg) => return Err(self.fatal(&msg).await),
        };
        let is_dir = match self.is_dir(&target).await {
            Ok(d) => d == Some(true),
            Err(msg) => return Err(self.fatal(&format!("{target}: {msg}")).await),
        };
        if self.cmd.target_is_dir && !is_dir {
            return Err(self.fatal(&format!("{target}: Not a directory")).await);
        }
        if self.cmd.recursive && (!is_dir || jail::is_protected(Path::new(&target[1..]))) {
            return Err(self
                .fatal(&format!(
                    "{target}: a recursive upload (scp -r) is accepted only into the inbox \
                     root or a directory inside it"
                ))
                .await);
        }
        tracing::info!(tenant = %self.ctx.tenant, account = %self.ctx.account,
            target = %target, "scp upload started");
        self.ack().await?;
        // The directories entered by `D` records, the target first.
        let mut dirs: Vec<String> = vec![target.clone()];
        while let Some(line) = self.line().await? {
            let Ok(rec) = String::from_utf8(line) else {
                return Err(self.fatal("protocol error: a record is not UTF-8").await);
            };
            match rec.as_bytes().first() {
                Some(1) | Some(2) => {
                    // The client's own error (e.g. a file it cannot read).
                    self.errors += 1;
                    tracing::warn!(tenant = %self.ctx.tenant, account = %self.ctx.account,
                        "scp: the client reported: {}", rec[1..].trim());
                    if rec.as_bytes()[0] == 2 {
                        return Ok(());
                    }
                }
                Some(b'E') if rec == "E" && dirs.len() > 1 => {
                    dirs.pop();
                    self.ack().await?;
                }
                Some(b'T') => match parse_times(&rec) {
                    Ok(t) => {
                        self.times = Some(t);
                        self.ack().await?;
                    }
                    Err(why) => return Err(self.fatal(&format!("protocol error: {why}")).await),
                },
                Some(b'C') | Some(b'D') => {
                    let (size, name) = match parse_entry(&rec) {
                        Ok(x) => x,
                        Err(why) => {
                            return Err(self.fatal(&format!("protocol error: {why}")).await)
                        }
                    };
                    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".."
                    {
                        return Err(self
                            .fatal(&format!("protocol error: unexpected filename: {name:?}"))
                            .await);
                    }
                    let here = dirs.last().expect("the target is always there");
                    // The target names the file itself when it is not a
                    // directory (one file, `scp f host:new.csv`).
                    let path = if dirs.len() == 1 && !is_dir {
                        target.clone()
                    } else {
                        join(here, name)
                    };
                    let times = self.times.take();
                    if rec.starts_with('D') {
                        self.directory(&path, dirs.len()).await?;
                        dirs.push(path);
                    } else {
                        self.file(&path, size, times).await?;
                    }
                }
                _ => {
                    let why = if rec == "E" {
                        "E without D".to_string()
                    } else {
                        format!("expected control record, got {:?}", one_line(&rec))
                    };
                    return Err(self.fatal(&format!("protocol error: {why}")).await);
                }
            }
        }
        if dirs.len() > 1 {
            return Err(Stop::Lost);
        }
        Ok(())
    }

    /// A `D` record: enters `path`, made if missing.
    async fn directory(&mut self, path: &str, depth: usize) -> Step<()> {
        if !self.cmd.recursive {
            return Err(self
                .fatal("protocol error: received a directory without -r")
                .await);
        }
        if depth > MAX_DEPTH {
            return Err(self
                .fatal(&format!("{path}: directories nested too deep"))
                .await);
        }
        match self.is_dir(path).await {
            Ok(Some(true)) => {}
            Ok(Some(false)) => return Err(self.fatal(&format!("{path}: Not a directory")).await),
            Ok(None) => {
                let id = self.next_id();
                if let Err(e) = self
                    .sftp
                    .mkdir(id, path.to_string(), FileAttributes::default())
                    .await
                {
                    return Err(self.fatal(&format!("{path}: {}", reason(&e))).await);
                }
            }
            Err(msg) => return Err(self.fatal(&format!("{path}: {msg}")).await),
        }
        self.ack().await
    }

    /// A `C` record: the file's bytes into `path`, through the session.
    async fn file(&mut self, path: &str, size: u64, times: Option<(u32, u32)>) -> Step<()> {
        let max = self.ctx.max_file_size;
        if size > max {
            let limit = bytesize::ByteSize::b(max).display().iec();
            return self
                .warn(&format!(
                    "{path}: file too large: {size} bytes, the limit is {limit} per file \
                     (max_file_size); nothing was written"
                ))
                .await;
        }
        let id = self.next_id();
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let handle = match self
            .sftp
            .open(id, path.to_string(), flags, FileAttributes::default())
            .await
        {
            Ok(h) => h.handle,
            Err(e) => return self.warn(&format!("{path}: {}", reason(&e))).await,
        };
        self.ack().await?;
        let mut failed: Option<String> = None;
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        while offset < size {
            let want = (size - offset).min(CHUNK as u64) as usize;
            let n = match self.input.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => return Err(Stop::Lost),
                Ok(n) => n,
            };
            if failed.is_none() {
                let id = self.next_id();
                if let Err(e) = self
                    .sftp
                    .write(id, handle.clone(), offset, buf[..n].to_vec())
                    .await
                {
                    failed = Some(reason(&e));
                }
            }
            offset += n as u64;
        }
        // The client's end of the file: `\0`, or its own error.
        let mut end = [0u8; 1];
        if self.input.read_exact(&mut end).await.is_err() {
            return Err(Stop::Lost);
        }
        if end[0] != 0 {
            let rest = self.line().await.ok().flatten().unwrap_or_default();
            tracing::warn!(tenant = %self.ctx.tenant, account = %self.ctx.account,
                path, "scp: the client ended the file with an error: {}",
                String::from_utf8_lossy(&rest).trim());
            // The handle stays open: the session ends and reports it incomplete.
            self.errors += 1;
            return Err(Stop::Fatal);
        }
        if let (Some((atime, mtime)), None) = (times, &failed) {
            let attrs = FileAttributes {
                atime: Some(atime),
                mtime: Some(mtime),
                ..Default::default()
            };
            let id = self.next_id();
            if let Err(e) = self.sftp.fsetstat(id, handle.clone(), attrs).await {
                tracing::debug!(path, "scp: times not set: {}", reason(&e));
            }
        }
        let id = self.next_id();
        let closed = self.sftp.close(id, handle).await;
        match (failed, closed) {
            (Some(msg), _)
            | (
                None,
                Err(StatusReply {
                    error_message: Some(msg),
                    ..
                }),
            ) => self.warn(&format!("{path}: {msg}")).await,
            (None, Err(e)) => self.warn(&format!("{path}: {}", reason(&e))).await,
            (None, Ok(_)) => self.ack().await,
        }
    }
}

/// A message on one line (the client reads up to `\n`).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests;
