//! Reviewed snapshots of every case under `cases/` (issue 6): a stable digest
//! per case file (verdicts, error magnitude in decades of the tolerance,
//! mismatch fractions to 2 significant digits, fingerprints, declared flags;
//! never raw floats or timings) in the repository's `snapshots/` directory.
//!
//! Regenerate after a reviewed change (then read the diff of `snapshots/`):
//!
//! ```sh
//! INSTA_UPDATE=always cargo test --release --test snapshots
//! ```
//!
//! With `INSTA_UPDATE=no` (ci/test and ci/gate export it; insta's default
//! under `CI=true`) a changed or missing snapshot fails the suite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use xdiff::cli::{Format, RunConfig};
use xdiff::report::digest;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cases_dir() -> PathBuf {
    repo().join("cases")
}

fn snapshots_dir() -> PathBuf {
    repo().join("snapshots")
}

/// The case sources directly under `cases/` (files and backend-test
/// directories), keyed by snapshot name (file stem).
fn case_sources() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(cases_dir()).expect("cases/") {
        let p = e.expect("dir entry").path();
        let is_case = p.extension().is_some_and(|x| x == "toml")
            || (p.is_dir() && p.join("model.onnx").exists());
        if is_case {
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            out.insert(stem, p);
        }
    }
    out
}

fn config(path: &Path) -> RunConfig {
    RunConfig {
        paths: vec![path.to_path_buf()],
        backends: Some(xdiff::case::default_backends()),
        device: None,
        format: Format::Json,
        out: None,
        all: false,
        port: None,
        repro: None,
        model: Default::default(),
        isolation: None,
        partition: None,
    }
}

/// Runs every case of one source in process, with every compiled backend.
fn digest_of(path: &Path) -> String {
    let cases =
        xdiff::app::load_cases(&config(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reports: Vec<_> = cases
        .iter()
        .map(|c| {
            xdiff::run::run_case(c, &c.backends)
                .unwrap_or_else(|e| panic!("{}: {e}", c.id()))
                .report
        })
        .collect();
    let mut d = format!("backends: {}\n", xdiff::case::default_backends().join(","));
    d.push_str(&digest::digest_reports(&reports));
    d
}

#[test]
fn every_case_matches_its_snapshot() {
    let sources = case_sources();
    assert!(
        !sources.is_empty(),
        "no cases under {}",
        cases_dir().display()
    );
    for (name, path) in sources {
        let d = digest_of(&path);
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("digest of cases/{}", path.file_name().unwrap().to_string_lossy()),
        }, {
            insta::assert_snapshot!(name, d);
        });
    }
}

/// A snapshot whose case file is gone (or renamed) fails until deleted.
#[test]
fn no_orphan_snapshots() {
    let sources = case_sources();
    let mut orphans = Vec::new();
    for e in std::fs::read_dir(snapshots_dir()).expect("snapshots/") {
        let p = e.expect("dir entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // Pending `.snap.new` files are insta's; only reviewed ones count.
        if let Some(stem) = name.strip_suffix(".snap") {
            if !sources.contains_key(stem) {
                orphans.push(name);
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "snapshots without a case file under cases/: {orphans:?} (delete them)"
    );
}

fn digest_with_threads(case: &Path, threads: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args([
            "run",
            case.to_str().unwrap(),
            "--format",
            "json",
            "--backends",
            &xdiff::case::default_backends().join(","),
        ])
        .env("RAYON_NUM_THREADS", threads)
        .env("OMP_NUM_THREADS", threads)
        .output()
        .expect("run xdiff");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "exit {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(doc["format_version"], 1);
    digest::digest_document(&doc)
}

/// The digest does not depend on the number of threads.
#[test]
fn digest_is_stable_across_thread_counts() {
    let case = cases_dir().join("resize.toml");
    let one = digest_with_threads(&case, "1");
    let two = digest_with_threads(&case, "2");
    assert!(!one.is_empty());
    assert_eq!(one, two, "digest differs between 1 and 2 threads");
}

/// The in-process digest and the binary's JSON digest agree.
#[test]
fn digest_of_json_matches_in_process() {
    let case = cases_dir().join("resize.toml");
    let via_json = digest_with_threads(&case, "2");
    let in_process = digest_of(&case);
    assert_eq!(in_process.split_once('\n').unwrap().1, via_json);
}
