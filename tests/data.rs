//! `Download` and `Dataset` stages end to end: archives built here in the published
//! layouts, served from 127.0.0.1, packed, and read back exactly.

mod common;

use std::collections::HashMap;

use common::http::{Behaviour, serve, serve_with};
use common::*;
use stages::data::Packed;
use stages::data::testutil::md5_hex;
use std::time::{Duration, Instant};

const NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Planes for image `k`: R = k, G = pixel index mod 256, B = 255 − k.
fn record(label: u8, k: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(vec![k; 1024]);
    r.extend((0..1024).map(|i| (i % 256) as u8));
    r.extend(vec![255 - k; 1024]);
    r
}

/// `cifar-10-binary.tar.gz` with two records per training batch and three test records.
fn cifar_archive() -> Vec<u8> {
    let mut members: Vec<(String, Vec<u8>)> = vec![(
        "batches.meta.txt".into(),
        (NAMES.join("\n") + "\n").into_bytes(),
    )];
    for b in 1..=5u8 {
        members.push((
            format!("data_batch_{b}.bin"),
            [record(b, 10 * b), record(0, 10 * b + 1)].concat(),
        ));
    }
    members.push((
        "test_batch.bin".into(),
        [record(7, 100), record(8, 101), record(9, 102)].concat(),
    ));
    // Padding makes the archive large enough for a transfer to be cut in the middle.
    members.push(("readme.html".into(), vec![b'x'; 200_000]));
    let named: Vec<(String, &[u8])> = members
        .iter()
        .map(|(name, bytes)| (format!("cifar-10-batches-bin/{name}"), bytes.as_slice()))
        .collect();
    let members: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    stages::data::testutil::tar_gz(&members)
}

fn pipeline(url: &str, md5: &str) -> String {
    format!(
        r#"Pipeline(name: "data", stages: {{
            "archive": Download(url: "{url}/cifar-10-binary.tar.gz", md5: Some("{md5}")),
            "train": Dataset(source: Cifar10(stage: "archive"), split: Train),
            "test": Dataset(source: Cifar10(stage: "archive"), split: Test),
        }})"#
    )
}

fn packed(report: &serde_json::Value, stage_name: &str) -> Packed {
    let dir = stage(report, stage_name)["output"]
        .as_str()
        .unwrap()
        .to_string();
    Packed::open(std::path::Path::new(&dir).join("images.pack").as_path()).unwrap()
}

#[test]
fn download_then_pack_round_trips_pixels_and_labels() {
    let archive = cifar_archive();
    let server = serve(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), archive.clone())]),
        None,
    );
    let p = Project::new();
    p.write("p.ron", &pipeline(&server.url, &md5_hex(&archive)));
    let report = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&report, "ran"), ["archive", "train", "test"]);

    let train = packed(&report, "train");
    assert_eq!(train.len(), 10);
    assert_eq!(train.header().classes, NAMES);
    assert_eq!(train.labels(), [1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    let image = train.image(2); // batch 2, first record: k = 20
    assert_eq!(&image[..6], &[20, 0, 235, 20, 1, 235]);
    assert_eq!(image[3 * 1023 + 1], 255);
    let test = packed(&report, "test");
    assert_eq!(test.labels(), [7, 8, 9]);
    assert_eq!(test.image(2)[0], 102);

    let show = p.json(&["show", "p.ron", "train"], 0);
    assert_eq!(
        show["record"]["summary"],
        "CIFAR-10 train (binary): 10 images of 32×32, 10 classes, 0 to 5 per class"
    );
    assert_eq!(show["record"]["metrics"]["images"], 10.0);
    let files: Vec<String> = show["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(files, ["images.pack", "preview.png"]);
    assert_eq!(
        server.log.lock().unwrap().len(),
        1,
        "downloaded once for both splits"
    );
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "cached").len(), 3);
}

#[test]
fn an_interrupted_transfer_resumes_where_it_stopped() {
    let archive = cifar_archive();
    let server = serve(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), archive.clone())]),
        Some(archive.len() / 2),
    );
    let p = Project::new();
    p.write("p.ron", &pipeline(&server.url, &md5_hex(&archive)));
    let report = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&report, "ran").len(), 3);
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log[0], "GET /cifar-10-binary.tar.gz");
    assert_eq!(
        log[1],
        format!(
            "GET /cifar-10-binary.tar.gz range=bytes={}-",
            archive.len() / 2
        )
    );
    assert_eq!(packed(&report, "test").labels(), [7, 8, 9]);
}

/// Runs the download pipeline against `server` with the idle timeout `seconds`,
/// expecting success: the project (which holds the outputs), the run's report and how
/// long it took.
fn run_with_idle_timeout(
    server: &common::http::Server,
    archive: &[u8],
    seconds: &str,
) -> (Project, serde_json::Value, Duration) {
    let p = Project::new();
    p.write("p.ron", &pipeline(&server.url, &md5_hex(archive)));
    let started = Instant::now();
    let out = p
        .command(&["run", "p.ron", "--json"])
        .env("PIPE_DOWNLOAD_IDLE_SECS", seconds)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = serde_json::from_slice(&out.stdout).unwrap();
    (p, report, started.elapsed())
}

/// A link that keeps sending finishes however long it takes: the idle timeout (here
/// 0.4 s) bounds the silence between bytes, not the transfer (here about 2 s, in 100
/// pieces), and the file is asked for as it is, not in a compressed encoding.
#[test]
fn a_slow_transfer_that_keeps_sending_finishes() {
    let archive = cifar_archive();
    let server = serve_with(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), archive.clone())]),
        Behaviour {
            pace: Some((archive.len() / 100 + 1, Duration::from_millis(20))),
            ..Behaviour::default()
        },
    );
    let (_project, report, took) = run_with_idle_timeout(&server, &archive, "0.4");
    assert!(took > Duration::from_millis(800), "the server was not slow");
    assert_eq!(packed(&report, "test").labels(), [7, 8, 9]);
    assert_eq!(
        server.log.lock().unwrap().len(),
        1,
        "one transfer, never cut"
    );
    assert_eq!(
        server.encodings.lock().unwrap()[0].as_deref(),
        Some("identity")
    );
}

/// A connection that goes silent mid-way is given up after the idle timeout and the
/// transfer resumed from the bytes it has.
#[test]
fn a_stalled_transfer_is_resumed_after_the_idle_timeout() {
    let archive = cifar_archive();
    let half = archive.len() / 2;
    let server = serve_with(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), archive.clone())]),
        Behaviour {
            // Far longer than the test takes: only the idle timeout ends that silence.
            stall_first_after: Some((half, Duration::from_secs(60))),
            ..Behaviour::default()
        },
    );
    let (_project, report, took) = run_with_idle_timeout(&server, &archive, "0.5");
    assert!(took < Duration::from_secs(20), "the stall was waited out");
    assert_eq!(packed(&report, "train").len(), 10);
    let log = server.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "GET /cifar-10-binary.tar.gz".to_string(),
            format!("GET /cifar-10-binary.tar.gz range=bytes={half}-"),
        ]
    );
    assert!(
        server
            .encodings
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.as_deref() == Some("identity")),
        "a ranged request must not ask for a compressed encoding"
    );
}

#[test]
fn a_wrong_checksum_fails_and_keeps_nothing() {
    let archive = cifar_archive();
    let server = serve(
        HashMap::from([("/cifar-10-binary.tar.gz".to_string(), archive.clone())]),
        None,
    );
    let p = Project::new();
    let wrong = "0123456789abcdef0123456789abcdef";
    p.write("p.ron", &pipeline(&server.url, wrong));
    let report = p.run("p.ron", &[], 1);
    let error = stage(&report, "archive")["error"].as_str().unwrap();
    assert!(
        error.ends_with(&format!(
            "cifar-10-binary.tar.gz.part: md5 is {}, expected {wrong}",
            md5_hex(&archive)
        )),
        "{error}"
    );
    assert_eq!(stage(&report, "train")["action"], "skipped");
    let key = stage(&report, "archive")["key"].as_str().unwrap();
    let work = p.path(&format!("cache/work/{key}"));
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "the bad file is not kept for resuming"
    );
}

#[test]
fn offline_the_error_says_what_to_place_where() {
    let p = Project::new();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    p.write(
        "p.ron",
        &pipeline("http://127.0.0.1:9", "c32a1d4ab5d03f1284b67883e8d87530"),
    );
    let report = p.run("p.ron", &[], 1);
    let error = stage(&report, "archive")["error"].as_str().unwrap();
    let key = stage(&report, "archive")["key"].as_str().unwrap();
    assert!(
        error.starts_with("cannot download http://127.0.0.1:9/cifar-10-binary.tar.gz: "),
        "{error}"
    );
    let place = p.path(&format!("cache/work/{key}/cifar-10-binary.tar.gz"));
    assert!(
        error.contains(&format!(
            "place it at `{}` (md5 c32a1d4ab5d03f1284b67883e8d87530)",
            place.display()
        )),
        "{error}"
    );

    // Doing as told makes the stage pass without network.
    let archive = cifar_archive();
    p.write("p.ron", &pipeline("http://127.0.0.1:9", &md5_hex(&archive)));
    let report = p.run("p.ron", &["--dry-run"], 0);
    let key = stage(&report, "archive")["key"].as_str().unwrap();
    std::fs::create_dir_all(p.path(&format!("cache/work/{key}"))).unwrap();
    std::fs::write(
        p.path(&format!("cache/work/{key}/cifar-10-binary.tar.gz")),
        &archive,
    )
    .unwrap();
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "ran").len(), 3);
}

#[test]
fn synthetic_and_local_sources() {
    let p = Project::new();
    std::fs::create_dir_all(p.path("data")).unwrap();
    std::fs::write(p.path("data/cifar-10-binary.tar.gz"), cifar_archive()).unwrap();
    p.write(
        "p.ron",
        r#"Pipeline(name: "local", stages: {
            "shapes": Dataset(source: Synthetic(seed: 1, per_class: 4, size: 16), split: Train),
            "local": Dataset(source: Cifar10(path: "data/cifar-10-binary.tar.gz"), split: Test),
        })"#,
    );
    let report = p.run("p.ron", &[], 0);
    let shapes = packed(&report, "shapes");
    assert_eq!(
        (
            shapes.len(),
            shapes.header().height,
            shapes.header().classes.len()
        ),
        (40, 16, 10)
    );
    assert_eq!(packed(&report, "local").labels(), [7, 8, 9]);
    let preview = format!(
        "{}/preview.png",
        stage(&report, "shapes")["output"].as_str().unwrap()
    );
    assert!(std::fs::metadata(preview).unwrap().len() > 100);
}

#[test]
fn dataset_parameters_are_checked_where_written() {
    let p = Project::new();
    p.write(
        "p.ron",
        "Pipeline(name: \"x\", stages: {\n  \"d\": Dataset(source: Cifar10(), split: Train),\n})",
    );
    let err = text(&p.pipe(&["run", "p.ron"]).stderr);
    assert!(
        err.starts_with("error: `Cifar10` needs either `path` or `stage`\n --> p.ron:2:24\n"),
        "{err}"
    );
    p.write("p.ron", "Pipeline(name: \"x\", stages: {\n  \"d\": Dataset(source: Cifar10(path: \"x\"), split: Validation),\n})");
    let err = text(&p.pipe(&["run", "p.ron"]).stderr);
    assert!(
        err.starts_with("error: unknown variant `Validation`, expected one of `Train`, `Test`"),
        "{err}"
    );
    p.write(
        "p.ron",
        "Pipeline(name: \"x\", stages: {\"a\": Download(url: \"https://example.org/f.bin\")})",
    );
    let err = text(&p.pipe(&["run", "p.ron"]).stderr);
    assert!(err.starts_with("error: give `md5` or `sha256`"), "{err}");
}

/// ImageNet as the seed preprocesses it, against the authors' loader run on the folders
/// of `fixtures/imagenet/` (made by `tools/fixtures/imagenet.py`; every case there):
/// every pixel equal for lossless files; for JPEG files, within what two JPEG decoders
/// may round apart (a few levels), their labels and order equal.
#[test]
fn imagenet_is_cropped_and_resized_as_the_seed_does() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/imagenet");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (make it with tools/fixtures/imagenet.py)",
                root.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.npz").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    let p = Project::new();
    for case in cases {
        let arrays = stages::metrics::npy::read_npz(&case.join("expected.npz")).unwrap();
        let size = arrays["size"].data[0] as u32;
        p.write(
            "p.ron",
            &format!(
                r#"Pipeline(name: "imagenet", stages: {{
                    "train": Dataset(source: ImageNet(path: "{}", size: Some({size})), split: Train),
                }})"#,
                case.display()
            ),
        );
        let report = p.run("p.ron", &[], 0);
        let pack = packed(&report, "train");
        let expected = &arrays["images"];
        assert_eq!(pack.len(), expected.shape[0], "{}", case.display());
        let labels: Vec<u32> = arrays["labels"].data.iter().map(|&l| l as u32).collect();
        assert_eq!(pack.labels(), labels, "{}", case.display());
        let got: Vec<u8> = (0..pack.len())
            .flat_map(|i| pack.image(i).to_vec())
            .collect();
        let worst = got
            .iter()
            .zip(&expected.data)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0f64, f64::max);
        let lossless = arrays["lossless"].data[0] == 1.0;
        eprintln!(
            "{}: {} images, max |diff| {worst}",
            case.display(),
            pack.len()
        );
        assert!(
            if lossless { worst == 0.0 } else { worst <= 8.0 },
            "{}: max |diff| {worst}",
            case.display()
        );
    }
    // The size is required, and named where it is missing.
    p.write(
        "p.ron",
        "Pipeline(name: \"x\", stages: {\n  \"d\": Dataset(source: ImageNet(path: \"x\"), split: Train),\n})",
    );
    let err = text(&p.pipe(&["run", "p.ron"]).stderr);
    assert!(
        err.starts_with("error: ImageNet needs the side of its images: `size: Some(128)`"),
        "{err}"
    );
}
