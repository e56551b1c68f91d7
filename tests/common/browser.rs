//! A page rendered by headless Chromium, as a reader's browser shows it: which of its
//! images loaded, how many tables it has. `.ci/run` installs Debian's `chromium`;
//! `PIPE_CHROMIUM` names another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Chromium binary, or a panic that says how to get one.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_CHROMIUM") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test renders the report in headless Chromium, and none is on PATH: \
         install Debian's `chromium` (apt-get install chromium; .ci/run does) or set \
         PIPE_CHROMIUM to a Chromium binary"
    );
}

/// Flags for a headless run that touches nothing outside `profile` and the network.
fn headless(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// What a script on `page` found once it loaded: `images` (src, loaded, natural width
/// and height of every `<img>`), `tables` and `rows`. The script runs on a copy of the
/// page beside it, so relative links resolve as they do for the page.
pub fn inspect(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name(".probe.html");
    let script = r#"<script>
addEventListener('load', () => {
  const images = [...document.images].map(i => ({
    src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0,
    width: i.naturalWidth, height: i.naturalHeight }));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({ images,
    tables: document.querySelectorAll('table').length,
    rows: document.querySelectorAll('tr').length });
  document.body.appendChild(out);
});
</script>"#;
    std::fs::write(&probe, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let output = within_a_minute(headless(profile.path()).arg("--dump-dom").arg(url(&probe)));
    std::fs::remove_file(&probe).unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let found = dom
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .unwrap_or_else(|| {
            panic!(
                "Chromium printed no probe result (status {}):\n{}\n{}",
                output.status,
                dom,
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .0;
    let json = found
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap()
}

/// A screenshot of `page` into `png`, `width` pixels wide and `height` high.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().unwrap();
    let output = within_a_minute(
        headless(profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url(page)),
    );
    assert!(png.exists(), "no screenshot: {output:?}");
}

/// The command's output, or a panic if it runs past a minute: a browser that hangs must
/// fail the test, not stall the suite. Output goes to files, which never fill up as a
/// pipe would while we wait.
fn within_a_minute(command: &mut Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let mut child = command
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} ran past a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    Output {
        status,
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}

fn url(page: &Path) -> String {
    format!("file://{}", page.canonicalize().unwrap().display())
}
