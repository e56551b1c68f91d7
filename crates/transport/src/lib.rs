//! Bytes to and from a remote cache, behind one blocking interface: S3-compatible
//! object stores (`s3://bucket/prefix`) and HTTP caches that take `PUT`
//! (`https://host/path`, as a WebDAV server or bazel-remote's HTTP protocol serve them).
//!
//! The protocols are `object_store`'s (request signing, retries with backoff, WebDAV's
//! `MKCOL` of missing folders); this crate adds what a cache needs on top: credentials
//! found where AWS's own tools find them ([`aws`]), an answer of "absent" instead of an
//! error for what the remote does not hold, and downloads that stream to a file with
//! their progress. Every call blocks; several threads may call at once (the calls share
//! one runtime and its connection pool).
//!
//! ```no_run
//! use transport::{Location, Transport};
//! let remote = Transport::connect(&Location::new("s3://lab-cache/pipe"))?;
//! if remote.size("cas/ab12")?.is_none() {
//!     remote.put("cas/ab12", b"bytes".to_vec())?;
//! }
//! # Ok::<(), transport::TransportError>(())
//! ```

pub mod aws;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{url}` is not a remote URL pipe can use: {why}")]
    Url { url: String, why: String },
    #[error("cannot read `{}`: {source}", path.display())]
    Profile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} `{path}` {preposition} {remote}: {source}")]
    Request {
        action: &'static str,
        preposition: &'static str,
        remote: String,
        path: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = TransportError> = std::result::Result<T, E>;

/// Where a remote is and how to reach it, as a remote's configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `s3://bucket[/prefix]`, `http://…` or `https://…`.
    pub url: String,
    /// An S3-compatible server other than AWS (MinIO, Ceph, s3s), e.g.
    /// `http://127.0.0.1:9000`; requests then use path-style addressing.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl Location {
    pub fn new(url: &str) -> Location {
        Location {
            url: url.to_string(),
            endpoint: None,
            region: None,
        }
    }
}

/// A connection to one remote.
pub struct Transport {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    url: String,
    /// How errors name the remote.
    label: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("url", &self.url).finish()
    }
}

impl Transport {
    /// Connects lazily: nothing is sent until the first call, so a wrong address or
    /// missing credentials surface there, with the path it was for.
    pub fn connect(location: &Location) -> Result<Transport> {
        let url = location.url.trim_end_matches('/');
        let bad = |why: &str| TransportError::Url {
            url: location.url.clone(),
            why: why.to_string(),
        };
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("it names no bucket (write s3://BUCKET[/PREFIX])"));
            }
            let s3 = s3_builder(location)?
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(&e.to_string()))?;
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let http = HttpBuilder::new()
                .with_url(url)
                .with_client_options(client_options())
                .with_retry(retry())
                .build()
                .map_err(|e| bad(&e.to_string()))?;
            Arc::new(http)
        } else {
            return Err(bad(
                "the scheme is not one of s3://, http:// or https:// (a folder shared by \
                 several machines needs no remote: point --cache at it)",
            ));
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| TransportError::Io {
                action: "start the network runtime for",
                path: PathBuf::from(url),
                source,
            })?;
        Ok(Transport {
            store,
            runtime,
            url: url.to_string(),
            label: url.to_string(),
        })
    }

    /// Names the remote in errors as `label` (e.g. its name and URL) instead of its URL.
    pub fn with_label(mut self, label: String) -> Transport {
        self.label = label;
        self
    }

    /// How errors name the remote.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The size of what the remote holds at `path`, or `None` if it holds nothing there.
    pub fn size(&self, path: &str) -> Result<Option<u64>> {
        let location = ObjectPath::from(path);
        match self.runtime.block_on(self.store.head(&location)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("look up", "on", path, e)),
        }
    }

    /// The whole of a small file, or `None` if the remote holds nothing at `path`.
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let location = ObjectPath::from(path);
        let fetched = self.runtime.block_on(async {
            let got = self.store.get(&location).await?;
            got.bytes().await
        });
        match fetched {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("download", "from", path, e)),
        }
    }

    /// Streams `path` into the new file `dest`, calling `progress` with each chunk's
    /// size. `false` (and no file) if the remote holds nothing there; on an error the
    /// partial file is removed.
    pub fn download(&self, path: &str, dest: &Path, progress: &dyn Fn(u64)) -> Result<bool> {
        let location = ObjectPath::from(path);
        let io = |action| {
            let path = dest.to_path_buf();
            move |source| TransportError::Io {
                action,
                path,
                source,
            }
        };
        let mut file = std::fs::File::create(dest).map_err(io("create"))?;
        let streamed = self.runtime.block_on(async {
            let mut stream = self.store.get(&location).await?.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if let Err(e) = file.write_all(&chunk) {
                    return Ok(Err(e));
                }
                progress(chunk.len() as u64);
            }
            Ok(Ok(()))
        });
        let outcome = match streamed {
            Ok(Ok(())) => file.sync_data().map_err(io("sync")).map(|()| true),
            Ok(Err(e)) => Err(io("write")(e)),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed("download", "from", path, e)),
        };
        if !matches!(outcome, Ok(true)) {
            let _ = std::fs::remove_file(dest);
        }
        outcome
    }

    /// Stores `bytes` at `path`. Both kinds of store make it visible whole or not at all
    /// (a `PUT` is one object), so a reader never sees half of it.
    pub fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        let location = ObjectPath::from(path);
        self.runtime
            .block_on(self.store.put(&location, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.failed("upload", "to", path, e))
    }

    /// Stores a file's content at `path`.
    pub fn upload(&self, path: &str, file: &Path) -> Result<()> {
        let bytes = std::fs::read(file).map_err(|source| TransportError::Io {
            action: "read",
            path: file.to_path_buf(),
            source,
        })?;
        self.put(path, bytes)
    }

    fn failed(
        &self,
        action: &'static str,
        preposition: &'static str,
        path: &str,
        source: object_store::Error,
    ) -> TransportError {
        TransportError::Request {
            action,
            preposition,
            remote: self.label.clone(),
            path: path.to_string(),
            source: Box::new(source),
        }
    }
}

/// S3's settings, later ones winning: the AWS profile files, the `AWS_*` environment,
/// then the remote's own endpoint and region.
fn s3_builder(location: &Location) -> Result<AmazonS3Builder> {
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client_options())
        .with_retry(retry());
    let from_env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
    for (key, value) in aws::profile()?.into_iter().chain(from_env) {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    if let Some(endpoint) = &location.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &location.region {
        builder = builder.with_region(region);
    }
    Ok(builder)
}

/// Large checkpoints travel in one request: no whole-request deadline short enough
/// to cut them, but a connection that cannot be made fails fast.
fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(30 * 60))
        .with_allow_http(true)
}

/// A dropped connection or a busy server is retried a few times, quickly; a remote
/// that stays away fails the transfer, which resumes where it stopped when rerun.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    }
}
