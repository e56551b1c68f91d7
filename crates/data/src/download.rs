//! Downloading a file with a known checksum: resumable (an interrupted transfer goes on
//! from where it stopped, in the same run or the next), verified before use, and with an
//! error that says what to place where when the machine is offline.
//!
//! A transfer has no deadline: a slow link that keeps sending finishes. What breaks a
//! transfer off is a connection that sends nothing for [`idle_timeout`]; it is then
//! resumed with a `Range` request, as often as each attempt moves some bytes.
//! Transfers ask for the file as it is (`Accept-Encoding: identity`): a compressed
//! transfer encoding would make byte offsets, and so resuming, meaningless.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use md5::Digest as _;
use serde::{Deserialize, Serialize};

use super::{DataError, Malformed};

/// The checksum a file must have. `sha256` may be a prefix (at least 8 hex digits), as
/// in weight files named after the start of their sha256.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksum {
    #[serde(default)]
    pub md5: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

impl Checksum {
    /// Whether the checksum is written so that it can verify anything.
    pub fn check_declared(&self) -> Result<(), Malformed> {
        let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
        match (&self.md5, &self.sha256) {
            (None, None) => Err(
                "give `md5` or `sha256`: a download that cannot be verified is not reproducible"
                    .into(),
            ),
            (Some(m), _) if m.len() != 32 || !hex(m) => {
                Err(format!("`md5` must be 32 hex digits, not `{m}`").into())
            }
            (_, Some(s)) if s.len() < 8 || s.len() > 64 || !hex(s) => {
                Err(format!("`sha256` must be 8 to 64 hex digits, not `{s}`").into())
            }
            _ => Ok(()),
        }
    }

    /// A file's sha256, as hex digits: what a download no checksum was published for
    /// turned out to be, for its record.
    pub fn sha256_of(path: &Path) -> Result<String, DataError> {
        let mut file = File::open(path).map_err(DataError::io(path))?;
        let mut sha = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf).map_err(DataError::io(path))? {
                0 => break,
                n => sha.update(&buf[..n]),
            }
        }
        Ok(sha.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Verifies a file, naming it and both digests on a mismatch.
    pub fn verify(&self, path: &Path) -> Result<(), DataError> {
        let mut file = File::open(path).map_err(DataError::io(path))?;
        let mut md5 = md5::Md5::new();
        let mut sha = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(DataError::io(path))?;
            if n == 0 {
                break;
            }
            if self.md5.is_some() {
                md5.update(&buf[..n]);
            }
            if self.sha256.is_some() {
                sha.update(&buf[..n]);
            }
        }
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let name = path.display().to_string();
        if let Some(expected) = &self.md5 {
            let actual = hex(&md5.finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(DataError::Checksum {
                    file: name,
                    algorithm: "md5",
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        if let Some(expected) = &self.sha256 {
            let actual = hex(&sha.finalize());
            if !actual.starts_with(&expected.to_ascii_lowercase()) {
                return Err(DataError::Checksum {
                    file: name,
                    algorithm: "sha256",
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        match (&self.md5, &self.sha256) {
            (Some(m), _) => format!("md5 {m}"),
            (_, Some(s)) => format!("sha256 {s}…"),
            _ => String::new(),
        }
    }
}

/// How many attempts in a row that move no byte a run makes before it gives up.
const ATTEMPTS: u32 = 5;

/// How long a connection may send nothing before the transfer counts as broken:
/// `PIPE_DOWNLOAD_IDLE_SECS` (seconds, fractions allowed), by default 60.
pub fn idle_timeout() -> Duration {
    std::env::var("PIPE_DOWNLOAD_IDLE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// The progress line of a download: bytes so far, the rate of this run, time left.
pub struct Meter {
    started: Instant,
    /// The bytes there were when this run's transfer started (a resumed part).
    first: Mutex<Option<u64>>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            started: Instant::now(),
            first: Mutex::new(None),
        }
    }
}

impl Meter {
    /// `name: 12.3 MB of 162.0 MB, 1.2 MB/s, 2 min left`
    pub fn line(&self, name: &str, done: u64, total: Option<u64>) -> String {
        let first = *self.first.lock().unwrap().get_or_insert(done);
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = (done.saturating_sub(first)) as f64 / seconds.max(1e-3);
        let mut line = format!("{name}: {}", megabytes(done as f64));
        if let Some(total) = total {
            line.push_str(&format!(" of {}", megabytes(total as f64)));
        }
        if rate > 0.0 {
            line.push_str(&format!(", {}/s", megabytes(rate)));
            if let Some(total) = total {
                let left = total.saturating_sub(done) as f64 / rate;
                line.push_str(&format!(", {} left", duration(left)));
            }
        }
        line
    }
}

fn megabytes(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// Downloads `url` to `dir/name` (keeping a `.part` file while incomplete) and verifies
/// it. A complete, verified file already there is used as is: that is also how a file
/// fetched by hand on another machine is given to an offline one.
pub fn fetch(
    url: &str,
    dir: &Path,
    name: &str,
    checksum: &Checksum,
    progress: &dyn Fn(u64, Option<u64>),
    cancel: &AtomicBool,
) -> Result<PathBuf, DataError> {
    let done = dir.join(name);
    if done.exists() {
        checksum.verify(&done)?;
        return Ok(done);
    }
    let part = dir.join(format!("{name}.part"));
    let size = || part.metadata().map_or(0, |m| m.len());
    let idle = idle_timeout();
    let mut last_error = String::new();
    let mut stalled = 0;
    while stalled < ATTEMPTS {
        if !last_error.is_empty() {
            tracing::warn!("download of {url} interrupted ({last_error}); resuming");
            std::thread::sleep(Duration::from_millis(200 * stalled as u64));
        }
        let before = size();
        match transfer(url, &part, idle, progress, cancel) {
            Ok(()) => {
                if let Err(e) = checksum.verify(&part) {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
                std::fs::rename(&part, &done).map_err(DataError::io(&done))?;
                return Ok(done);
            }
            Err(Transfer::Cancelled) => return Err(DataError::Cancelled),
            Err(Transfer::Fatal(message)) => {
                return Err(DataError::Download {
                    url: url.into(),
                    message,
                    hint: format!(
                        "without network access, fetch the file elsewhere and place it at `{}` ({}), then run again",
                        done.display(),
                        checksum.describe()
                    ),
                });
            }
            Err(Transfer::Broken(message)) => {
                // Attempts that move bytes go on; only a run of empty ones gives up.
                stalled = if size() > before { 0 } else { stalled + 1 };
                last_error = message;
            }
        }
    }
    Err(DataError::Download {
        url: url.into(),
        message: format!(
            "the transfer broke off {ATTEMPTS} times in a row without a byte, last: {last_error}"
        ),
        hint: format!(
            "run again to resume from the {} bytes in `{}`",
            part.metadata().map_or(0, |m| m.len()),
            part.display()
        ),
    })
}

enum Transfer {
    /// Worth resuming.
    Broken(String),
    /// Not worth retrying now (no such host, HTTP 404, …).
    Fatal(String),
    Cancelled,
}

fn transfer(
    url: &str,
    part: &Path,
    idle: Duration,
    progress: &dyn Fn(u64, Option<u64>),
    cancel: &AtomicBool,
) -> Result<(), Transfer> {
    let have = part.metadata().map_or(0, |m| m.len());
    // No deadline for the body: every read (and the wait for the answer) may take up to
    // `idle`, however long the whole takes.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(idle))
        .timeout_per_read(Some(idle))
        .accept_encoding("identity")
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    // Failing to get an answer at all (no network, no such host, refused) is not worth
    // retrying at once; a transfer that breaks off after an answer is.
    let response = request.call().map_err(|e| match &e {
        ureq::Error::Timeout(_) => Transfer::Broken(e.to_string()),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Transfer::Broken(e.to_string())
        }
        _ => Transfer::Fatal(e.to_string()),
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (mut file, start, total) = match status {
        206 => {
            // `Content-Range: bytes 100-199/200`
            let total = header("content-range")
                .and_then(|r| r.rsplit('/').next().and_then(|t| t.parse().ok()));
            let file = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| Transfer::Fatal(e.to_string()))?;
            (file, have, total)
        }
        200 => {
            let total = header("content-length").and_then(|l| l.parse().ok());
            let file = File::create(part).map_err(|e| Transfer::Fatal(e.to_string()))?;
            (file, 0, total)
        }
        416 if have > 0 => {
            // The part already holds everything: the checksum decides.
            return Ok(());
        }
        other => return Err(Transfer::Fatal(format!("the server answered HTTP {other}"))),
    };
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = start;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Transfer::Cancelled);
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(Transfer::Broken(format!("{e} after {got} bytes"))),
        };
        file.write_all(&buf[..n])
            .map_err(|e| Transfer::Fatal(e.to_string()))?;
        got += n as u64;
        progress(got, total);
    }
    file.sync_data()
        .map_err(|e| Transfer::Fatal(e.to_string()))?;
    match total {
        Some(total) if got < total => Err(Transfer::Broken(format!(
            "connection closed after {got} of {total} bytes"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::Meter;

    #[test]
    fn the_progress_line_has_bytes_rate_and_time_left() {
        let meter = Meter::default();
        assert_eq!(
            meter.line("a.tgz", 1_000_000, Some(5_000_000)),
            "a.tgz: 1.0 MB of 5.0 MB"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        let line = meter.line("a.tgz", 2_000_000, Some(5_000_000));
        assert!(line.starts_with("a.tgz: 2.0 MB of 5.0 MB, "), "{line}");
        assert!(
            line.contains(" MB/s, ") && line.ends_with(" s left"),
            "{line}"
        );
        assert!(meter.line("b", 3_000_000, None).ends_with("MB/s"));
    }
}
