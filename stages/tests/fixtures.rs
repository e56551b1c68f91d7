//! Where the parity fixtures are: `$PIPE_FIXTURES`, or `shared/fixtures` beside the
//! repository. A missing folder fails the test that needs it, saying where it looked.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn dir(sub: &str) -> PathBuf {
    let root = match std::env::var_os("PIPE_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    };
    let dir = root.join(sub);
    assert!(
        dir.is_dir(),
        "fixture folder `{}` is missing: set PIPE_FIXTURES or place shared/fixtures beside the repository",
        dir.display()
    );
    dir
}
