//! Real remote-cache servers, each on a free port of 127.0.0.1 with a folder of its own,
//! stopped when dropped: `s3s-fs` (an S3 server on a folder, from crates.io) and nginx
//! with its WebDAV module (from Debian). `.ci/remotes install` installs both; a missing
//! one fails the test, saying so. And a proxy that cuts connections, for the faults of
//! a network.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "pipe-test-key";
pub const SECRET_KEY: &str = "pipe-test-secret";
const BUCKET: &str = "pipe-test";
/// Where in the bucket, or under the WebDAV root, the remote's files go.
const PREFIX: &str = "shared/cache";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    S3,
    WebDav,
}

pub struct Server {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    /// The bytes of the whole objects the server holds (files in its `cas` folders;
    /// both servers keep an upload elsewhere until it is complete).
    pub fn cas_bytes(&self) -> u64 {
        fn walk(dir: &std::path::Path, in_cas: bool) -> u64 {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|e| e.unwrap())
                    .map(|e| match e.file_type().unwrap().is_dir() {
                        true => walk(&e.path(), e.file_name() == "cas"),
                        // Named by their digest; a server's partial upload is not.
                        false if in_cas && e.file_name().len() == 64 => e.metadata().unwrap().len(),
                        false => 0,
                    })
                    .sum()
            })
        }
        walk(self.dir.path(), false)
    }

    pub fn start(kind: Kind) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = match kind {
            Kind::S3 => {
                std::fs::create_dir_all(dir.path().join("data").join(BUCKET)).unwrap();
                Command::new(program("s3s-fs", "PIPE_TEST_S3S_FS"))
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(dir.path().join("data"))
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
                    .spawn()
                    .expect("s3s-fs starts")
            }
            Kind::WebDav => {
                let conf = nginx_conf(dir.path(), port);
                Command::new(program("nginx", "PIPE_TEST_NGINX"))
                    .arg("-c")
                    .arg(&conf)
                    .arg("-p")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
                    .spawn()
                    .expect("nginx starts")
            }
        };
        let mut server = Server {
            kind,
            port,
            child,
            dir,
        };
        server.wait_until_listening();
        server
    }

    /// Both kinds, for a test that runs its case on each.
    pub fn both() -> [Server; 2] {
        [Server::start(Kind::S3), Server::start(Kind::WebDav)]
    }

    /// `pipe remote add` arguments for this server reached through `port`.
    pub fn remote_args(&self, port: u16) -> Vec<String> {
        match self.kind {
            Kind::S3 => vec![
                format!("s3://{BUCKET}/{PREFIX}"),
                format!("--endpoint=http://127.0.0.1:{port}"),
                "--region=us-east-1".into(),
            ],
            Kind::WebDav => vec![format!("http://127.0.0.1:{port}/{PREFIX}")],
        }
    }

    /// The file in which the server keeps what the remote holds at `path`.
    pub fn file(&self, path: &str) -> PathBuf {
        match self.kind {
            Kind::S3 => self.dir.path().join("data").join(BUCKET),
            Kind::WebDav => self.dir.path().join("www"),
        }
        .join(PREFIX)
        .join(path)
    }

    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("server.log"));
                panic!("{:?} server exited with {status}: {log:?}", self.kind);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{:?} never listened",
                self.kind
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program from `var`, else on PATH (or in cargo's and the system's binary
/// folders); a missing one fails the test with what to install.
fn program(name: &str, var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|c| c.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (nor named by {var}): the remote-cache tests run \
                 against real servers; `.ci/remotes install` installs s3s-fs and nginx"
            )
        })
}

/// nginx serving `dir/www` over WebDAV (PUT creating folders), everything it writes
/// kept under `dir`.
fn nginx_conf(dir: &Path, port: u16) -> PathBuf {
    let d = dir.display();
    for sub in ["www", "tmp", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // As root, nginx's workers would run as `nobody`, who cannot write our folder.
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let conf = format!(
        "daemon off;\n{user}\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
         events {{}}\nhttp {{\n  access_log {d}/logs/access.log;\n  client_body_temp_path {d}/tmp/body;\n\
         proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n\
         uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n    location / {{\n\
         dav_methods PUT DELETE MKCOL COPY MOVE;\n      create_full_put_path on;\n\
         client_max_body_size 0;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A proxy in front of a server that forwards `budget` bytes (both ways), then cuts
/// every connection (those open and those to come): a server that goes away in the
/// middle of a transfer.
pub struct Cutter {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Cutter {
    pub fn new(upstream: u16, budget: i64) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicI64::new(budget));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                if left.load(Ordering::Relaxed) <= 0 {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let left = left.clone();
                let left2 = left.clone();
                std::thread::spawn(move || pump(client, server, &left));
                std::thread::spawn(move || pump(s2, c2, &left2));
            }
        });
        Cutter { port, stop }
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, spending the budget; closes both at the end or when the
/// budget is spent.
fn pump(mut from: TcpStream, mut to: TcpStream, left: &AtomicI64) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = left.fetch_sub(n as i64, Ordering::Relaxed);
        let allowed = before.clamp(0, n as i64) as usize;
        if to.write_all(&buf[..allowed]).is_err() || allowed < n {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
