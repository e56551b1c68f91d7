//! The `pipe` command line. Everything here is presentation: argument parsing, live
//! display, text and JSON output, exit codes. The engine is the `pipe` library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    pipe::launch::init();
    // Training and metrics free large buffers every step: keep them for the next.
    #[cfg(feature = "kinds")]
    stages::kernels::memory::keep_freed_memory();
    let args = <cli::Cli as clap::Parser>::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let text = e.to_string();
            if text.starts_with("error:") {
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::FAILURE
        }
    }
}
