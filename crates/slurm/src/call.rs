//! Running one of Slurm's programs: its output, its exit, and a deadline, so that a
//! controller that does not answer stalls no caller for ever.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::SlurmError;

/// What a finished program printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub code: Option<i32>,
}

/// Runs `program args…` with stdin closed, killed after `deadline`.
pub fn call(program: &str, args: &[String], deadline: Duration) -> Result<Output, SlurmError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SlurmError::Start {
            program: program.to_string(),
            source,
        })?;
    // Read both pipes on threads: a program that fills one pipe must not block.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SlurmError::TimedOut {
                    command: command_line(program, args),
                    seconds: deadline.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(source) => {
                return Err(SlurmError::Start {
                    program: program.to_string(),
                    source,
                });
            }
        }
    };
    Ok(Output {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        success: status.success(),
        code: status.code(),
    })
}

/// The command as a user would type it, for messages.
pub fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_exit_and_deadline() {
        let ok = call(
            "sh",
            &["-c".into(), "echo out; echo err >&2; exit 3".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            (ok.stdout.as_str(), ok.stderr.as_str(), ok.success, ok.code),
            ("out\n", "err\n", false, Some(3))
        );
        let slow = call("sleep", &["5".into()], Duration::from_millis(200));
        assert!(matches!(slow, Err(SlurmError::TimedOut { .. })));
        let missing = call("no-such-slurm-program", &[], Duration::from_secs(1));
        assert!(matches!(missing, Err(SlurmError::Start { .. })));
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        assert_eq!(
            command_line("sbatch", &["--wrap".into(), "echo it's".into()]),
            r"sbatch --wrap 'echo it'\''s'"
        );
    }
}
