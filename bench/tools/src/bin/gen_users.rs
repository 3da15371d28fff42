//! `gen-users ROWS OUT.csv [--seed N] [--variant base|changed]`
//!
//! Writes a deterministic users CSV: the same arguments always give a
//! byte-identical file (no clock, no OS randomness, a hand-rolled splitmix64).
//!
//! Header: `user_id,email,first_name,last_name,enabled,roles,reports_to`.
//! Row i (1-based): user_id `U{i:07}`, email `first.last.i@example.com`
//! (lower-case, unique through i), names from the built-in lists, enabled
//! `true` for ~95% of rows, 1-3 distinct roles joined with `|`, reports_to =
//! the user_id of row max(1, i/10) (row 1 has an empty reports_to, so every
//! manager appears before the rows that report to it). ~100 bytes a row.
//!
//! `--variant changed` gives the same users, but ~1% of the rows carry a
//! different last_name (the email, and every other cell, stay the same), for
//! measuring an import of a file with a few updates. Each row's cells are
//! derived from (seed, i) alone, so both variants agree on every other row.
//!
//! OUT may be `-` for stdout. Prints a summary line on stderr.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

const FIRST_NAMES: &[&str] = &[
    "alexander", "amelia", "benjamin", "charlotte", "christopher", "daniela", "elizabeth",
    "emmanuel", "francesca", "gabriel", "harriet", "isabella", "jonathan", "katherine",
    "leonardo", "margaret", "nathaniel", "olivia", "patrick", "rebecca", "sebastian",
    "theodore", "valentina", "william", "annabelle", "maximilian", "josephine", "frederick",
    "evangeline", "bartholomew", "genevieve", "cornelius",
];

const LAST_NAMES: &[&str] = &[
    "anderson", "bergstrom", "castellano", "donovan", "eriksson", "fitzgerald", "gonzalez",
    "hargreaves", "iwasaki", "johansson", "kowalski", "lindqvist", "montgomery", "nakamura",
    "oconnell", "petrovic", "quintero", "rasmussen", "schneider", "thompson", "underwood",
    "vandenberg", "whitfield", "yamamoto", "zimmerman", "abernathy", "blackwood",
    "chamberlain", "delacroix", "ellingsworth", "fairbanks", "goldsmith",
];

const ROLES: &[&str] = &[
    "staff", "engineering", "sales", "support", "finance", "marketing", "operations", "admin",
];

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Salt for the "is this row changed in the changed variant" stream, so that
/// choice is independent of the row's own cells.
const CHANGE_SALT: u64 = 0xC4A5_6E0D_5EED_0001;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough pick in 0..n (n is tiny, modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// An independent generator for row `i` of stream `seed`.
    fn for_row(seed: u64, i: u64) -> Self {
        let mut s = SplitMix64(seed ^ i.wrapping_mul(GOLDEN));
        let mixed = s.next();
        SplitMix64(mixed)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Base,
    Changed,
}

struct Args {
    rows: u64,
    out: String,
    seed: u64,
    variant: Variant,
}

const USAGE: &str = "usage: gen-users ROWS OUT.csv [--seed N] [--variant base|changed]";

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut seed = 42u64;
    let mut variant = Variant::Base;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => {
                let v = it.next().ok_or("--seed needs a value")?;
                seed = v.parse().map_err(|_| format!("bad --seed {v:?}"))?;
            }
            "--variant" => {
                let v = it.next().ok_or("--variant needs a value")?;
                variant = match v.as_str() {
                    "base" => Variant::Base,
                    "changed" => Variant::Changed,
                    _ => return Err(format!("bad --variant {v:?} (base|changed)")),
                };
            }
            "-h" | "--help" => return Err(String::new()),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => positional.push(a),
        }
    }
    if positional.len() != 2 {
        return Err("expected ROWS and OUT.csv".into());
    }
    let rows = positional[0]
        .replace('_', "")
        .parse()
        .map_err(|_| format!("bad ROWS {:?}", positional[0]))?;
    Ok(Args { rows, out: positional.pop().unwrap(), seed, variant })
}

fn write_rows(w: &mut dyn Write, a: &Args) -> io::Result<(u64, u64)> {
    let header = b"user_id,email,first_name,last_name,enabled,roles,reports_to\n";
    w.write_all(header)?;
    let mut bytes = header.len() as u64;
    let mut changed = 0u64;
    let mut line = String::with_capacity(256);
    let mut picked = [0usize; 3];
    for i in 1..=a.rows {
        let mut r = SplitMix64::for_row(a.seed, i);
        let first = FIRST_NAMES[r.below(FIRST_NAMES.len())];
        let last_idx = r.below(LAST_NAMES.len());
        let last = LAST_NAMES[last_idx];
        let enabled = r.below(100) >= 5;
        let n_roles = match r.below(20) {
            0..=5 => 1,
            6..=13 => 2,
            _ => 3,
        };
        let mut n = 0;
        while n < n_roles {
            let k = r.below(ROLES.len());
            if !picked[..n].contains(&k) {
                picked[n] = k;
                n += 1;
            }
        }
        // The file's last_name: in the changed variant ~1% of rows get another one.
        let mut last_cell = last;
        if a.variant == Variant::Changed {
            let mut c = SplitMix64::for_row(a.seed ^ CHANGE_SALT, i);
            if c.below(100) == 0 {
                let shift = 1 + c.below(LAST_NAMES.len() - 1);
                last_cell = LAST_NAMES[(last_idx + shift) % LAST_NAMES.len()];
                changed += 1;
            }
        }

        line.clear();
        use std::fmt::Write as _;
        let _ = write!(line, "U{i:07},{first}.{last}.{i}@example.com,");
        push_capitalized(&mut line, first);
        line.push(',');
        push_capitalized(&mut line, last_cell);
        line.push_str(if enabled { ",true," } else { ",false," });
        for (j, k) in picked[..n_roles].iter().enumerate() {
            if j > 0 {
                line.push('|');
            }
            line.push_str(ROLES[*k]);
        }
        line.push(',');
        if i > 1 {
            let _ = write!(line, "U{:07}", (i / 10).max(1));
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
        bytes += line.len() as u64;
    }
    w.flush()?;
    Ok((bytes, changed))
}

fn push_capitalized(s: &mut String, name: &str) {
    let mut cs = name.chars();
    if let Some(c) = cs.next() {
        s.push(c.to_ascii_uppercase());
        s.push_str(cs.as_str());
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gen-users: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if args.out == "-" {
        let stdout = io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        write_rows(&mut w, &args)
    } else {
        // Write next to the target and rename, so an interrupted run never
        // leaves a truncated file that looks like a finished one.
        let tmp = format!("{}.tmp", args.out);
        let res = File::create(&tmp).and_then(|f| {
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let r = write_rows(&mut w, &args)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(r)
        });
        match res {
            Ok(r) => std::fs::rename(&tmp, &args.out).map(|_| r),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    };
    match result {
        Ok((bytes, changed)) => {
            let per_row = if args.rows > 0 { bytes as f64 / args.rows as f64 } else { 0.0 };
            eprintln!(
                "gen-users: {} rows, {} bytes ({:.1} bytes/row), seed {}, variant {}{}",
                args.rows,
                bytes,
                per_row,
                args.seed,
                if args.variant == Variant::Changed { "changed" } else { "base" },
                if args.variant == Variant::Changed { format!(", {changed} rows altered") } else { String::new() },
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-users: writing {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}
