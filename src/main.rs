//! The `userdrop` binary: parse the command line, run it, map the outcome to
//! an exit code (0 ok, 1 the file or job failed, 2 usage or config error).

use std::process::ExitCode;

use clap::Parser;

/// Many small allocations per request from many threads: glibc's arenas
/// contended under load (bench/http); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` (its place in mimalloc 3's `mi_option_t`; the
/// test below checks it still names the option whose default is 1 s).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory stays free before mimalloc returns it to the system.
/// Its default, 1 s, returned what an import freed between its passes, and
/// the next pass paid to touch fresh memory again (bench/README.md, "The
/// ratio met"): 10 s keeps it for the job and still returns it once idle.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

fn main() -> ExitCode {
    // SAFETY: mi_option_set stores a value mimalloc reads when it next
    // purges; no other thread exists yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    let cli = userdrop::cli::Cli::parse();
    match userdrop::cli::run(cli) {
        Ok(code) => code,
        Err(err) if userdrop::cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("userdrop: {err:#}");
            userdrop::cli::exit_code_of(&err).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_with_a_one_second_default() {
        // SAFETY: reads an option's value.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "mimalloc's option {MI_OPTION_PURGE_DELAY} is not purge_delay (default 1000 ms)"
        );
    }
}
