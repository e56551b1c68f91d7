//! How a stage's program is started: in a process group of its own (so that it and what
//! it starts can be stopped together), dying with us (so that `kill -9 pipe` leaves no
//! orphan writing into a folder that will never be committed), and cheaply however
//! large this process has grown.
//!
//! The death signal has to be asked for by the child itself (`prctl`), between fork and
//! exec. Doing that in a `pre_exec` hook makes the standard library fork, which copies
//! this process's page tables: with a sweep of 100,000 stages planned (close to 1 GB
//! resident) a fork and the exec after it cost about 80 ms, and a first run started 10
//! programs a second. So the `pipe` binary registers itself ([`init`]) as a launcher:
//! the program is started through `pipe __launch PID PROGRAM ARGS…`, spawned without a
//! hook (the standard library then uses `posix_spawn`, which shares the memory instead
//! of copying it, and joins the new group itself); the launcher asks for the signal,
//! checks that the parent is still the one that started it, and execs the program in
//! its own place (same pid, same group). A library user that did not register a
//! launcher (the engine's tests) gets the `pre_exec` fork.

use std::ffi::OsString;
use std::process::Command as Process;
use std::sync::OnceLock;

/// The first argument that makes `pipe` a launcher; no subcommand is spelt so.
const LAUNCH: &str = "__launch";

/// Exit status of a launcher that could not exec the program (as a shell's for a
/// command not found).
pub const CANNOT_EXEC: i32 = 127;

static LAUNCHER: OnceLock<OsString> = OnceLock::new();

/// Called first by a binary: execs the program if this process is a launcher, else makes
/// this binary the launcher of the programs it runs.
pub fn init() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == LAUNCH) {
        launch(args.collect());
    }
    // Resolved in the child, whose image this still is when it execs: right even if
    // the binary was replaced since we started. Without /proc (a bare container), the
    // fork of `isolated` starts programs instead.
    let launcher = std::path::Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && launcher.exists() {
        LAUNCHER.get_or_init(|| launcher.into());
    }
}

/// A process for `argv` that starts isolated, as the module says.
pub fn isolated(argv: &[String]) -> Process {
    use std::os::unix::process::CommandExt;
    match LAUNCHER.get() {
        Some(launcher) => {
            let mut process = Process::new(launcher);
            process
                .arg(LAUNCH)
                .arg(std::process::id().to_string())
                .args(argv)
                .process_group(0);
            process
        }
        None => {
            let mut process = Process::new(&argv[0]);
            process.args(&argv[1..]);
            // SAFETY: setpgid and prctl are async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                process.pre_exec(|| {
                    libc::setpgid(0, 0);
                    #[cfg(target_os = "linux")]
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            process
        }
    }
}

/// The launcher: `PARENT_PID PROGRAM ARGS…`. Never returns.
fn launch(args: Vec<OsString>) -> ! {
    use std::os::unix::process::CommandExt;
    let [parent, program, rest @ ..] = args.as_slice() else {
        eprintln!("pipe {LAUNCH}: expects the parent's pid and a program");
        std::process::exit(CANNOT_EXEC);
    };
    #[cfg(target_os = "linux")]
    // SAFETY: prctl and getppid take and return plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent died before the signal was asked for: nobody waits for us.
        if parent.to_str().and_then(|p| p.parse().ok()) != Some(libc::getppid()) {
            std::process::exit(CANNOT_EXEC);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    let error = Process::new(program).args(rest).exec();
    eprintln!("pipe: cannot run `{}`: {error}", program.to_string_lossy());
    std::process::exit(CANNOT_EXEC);
}
