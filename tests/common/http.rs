//! A file server on 127.0.0.1 for download tests: GET with `Range`, an optional first
//! transfer cut short, a log of what was asked. It serves a bounded number of requests
//! within a bounded time, then stops by itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    pub url: String,
    /// `GET /path` plus ` range=bytes=N-` when asked for a range.
    pub log: Arc<Mutex<Vec<String>>>,
    /// The `Accept-Encoding` of each request, in the order of `log`.
    pub encodings: Arc<Mutex<Vec<Option<String>>>>,
}

/// How the server misbehaves.
#[derive(Clone, Copy, Default)]
pub struct Behaviour {
    /// The first transfer of a whole file stops (the connection closes) after this many
    /// bytes of the body.
    pub cut_first_after: Option<usize>,
    /// The first transfer of a whole file sends this many bytes of the body, then
    /// sends nothing for the given time, then closes.
    pub stall_first_after: Option<(usize, Duration)>,
    /// Bodies go out this many bytes at a time, with this pause between.
    pub pace: Option<(usize, Duration)>,
}

/// Serves `files` by path (`/name`); if `cut_first_after` is set, the first transfer of
/// a whole file stops after that many bytes of the body.
pub fn serve(files: HashMap<String, Vec<u8>>, cut_first_after: Option<usize>) -> Server {
    serve_with(
        files,
        Behaviour {
            cut_first_after,
            ..Behaviour::default()
        },
    )
}

/// Serves `files` by path, each connection on its own thread, misbehaving as told.
pub fn serve_with(files: HashMap<String, Vec<u8>>, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let encodings = Arc::new(Mutex::new(Vec::new()));
    let (seen, seen_encodings) = (log.clone(), encodings.clone());
    let files = Arc::new(files);
    // The first whole-file transfer misbehaves; later ones are served as asked.
    let first = Arc::new(Mutex::new(true));
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < 50 && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            served += 1;
            let (seen, seen_encodings, files, first) = (
                seen.clone(),
                seen_encodings.clone(),
                files.clone(),
                first.clone(),
            );
            std::thread::spawn(move || {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let (mut range, mut encoding) = (None, None);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("range") {
                            range = Some(value.trim().to_string());
                        } else if name.eq_ignore_ascii_case("accept-encoding") {
                            encoding = Some(value.trim().to_string());
                        }
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let entry = match &range {
                    Some(r) => format!("GET {path} range={r}"),
                    None => format!("GET {path}"),
                };
                seen.lock().unwrap().push(entry);
                seen_encodings.lock().unwrap().push(encoding);
                let mut stream = stream;
                let Some(body) = files.get(&path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let start: usize = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.trim_end_matches('-').parse().ok())
                    .unwrap_or(0);
                let rest = &body[start.min(body.len())..];
                let head = if range.is_some() {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
                        rest.len(),
                        body.len() - 1,
                        body.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        rest.len()
                    )
                };
                let _ = stream.write_all(head.as_bytes());
                let misbehave = range.is_none() && std::mem::take(&mut *first.lock().unwrap());
                let (send, stall) = match (misbehave, behaviour) {
                    (
                        true,
                        Behaviour {
                            cut_first_after: Some(n),
                            ..
                        },
                    ) => (&rest[..n.min(rest.len())], None),
                    (
                        true,
                        Behaviour {
                            stall_first_after: Some((n, pause)),
                            ..
                        },
                    ) => (&rest[..n.min(rest.len())], Some(pause)),
                    _ => (rest, None),
                };
                let (chunk, pause) = behaviour
                    .pace
                    .unwrap_or((send.len().max(1), Duration::ZERO));
                for piece in send.chunks(chunk.max(1)) {
                    if stream
                        .write_all(piece)
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(pause);
                }
                if let Some(pause) = stall {
                    std::thread::sleep(pause);
                }
            });
        }
    });
    Server {
        url,
        log,
        encodings,
    }
}
