//! The `userdrop` binary: parse the command line, run it, map the outcome to
//! an exit code (0 ok, 1 the file or job failed, 2 usage or config error).

use std::process::ExitCode;

use clap::Parser;

/// Many small allocations per request from many threads: glibc's arenas
/// contended under load (bench/http); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
