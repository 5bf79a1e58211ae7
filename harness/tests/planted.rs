//! Planted mistakes are caught at the right node (issue 11): `cases/planted.toml`
//! runs a small torch-exported network through the faithful lanes and seven
//! `[[lane]]`s, each with one node's attributes changed the way silent
//! mistakes happen. Each planted lane must have exactly one *introduced*
//! node, the patched one (everything after it inherited); the faithful lanes
//! none; and the declarations are strict, so a planted mistake that stops
//! showing fails the case.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{write, xdiff};

fn case_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/planted.toml")
}

/// Runs `case` as JSON: the exit code and the one case's report.
fn run_json(case: &Path) -> (i32, Value) {
    let (code, out, err) = xdiff(&["run", case.to_str().unwrap(), "--format", "json"]);
    assert!(matches!(code, 0 | 1), "exit {code}: {err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON report");
    (code, doc["cases"][0].clone())
}

/// The case file's `[[lane]]`s: (rendered lane name, patched node).
fn planted_lanes(text: &str) -> Vec<(String, String)> {
    let doc: toml::Table = toml::from_str(text).unwrap();
    doc["lane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let lane = format!(
                "{}:{}",
                l["backend"].as_str().unwrap(),
                l["name"].as_str().unwrap()
            );
            (lane, l["patch"]["node"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The nodes `lane` reports as introducing a divergence.
fn introduced<'a>(report: &'a Value, lane: &str) -> Vec<&'a str> {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["lanes"][lane]["origin"] == "introduced")
        .map(|n| n["name"].as_str().unwrap())
        .collect()
}

/// The local error of `lane` at `node`, in units of its bound (or the shape mismatch).
fn local_error(node: &Value, lane: &str) -> String {
    let local = &node["lanes"][lane]["local"];
    match local["bound_ratio"].as_f64() {
        Some(r) => format!("{r:.1} x bound"),
        None => format!("shape {} vs {}", local["got"], local["want"]),
    }
}

#[test]
fn each_planted_mistake_is_introduced_at_exactly_its_node() {
    let text = std::fs::read_to_string(case_file()).unwrap();
    let planted = planted_lanes(&text);
    assert_eq!(planted.len(), 7, "seven planted mistakes");
    let (code, report) = run_json(&case_file());
    assert_eq!(code, 0, "failures: {}", report["failures"]);
    println!(
        "{:<18} {:<6} {:<20} {:<26} fingerprint",
        "lane", "node", "op", "local error"
    );
    for (lane, node) in &planted {
        assert_eq!(introduced(&report, lane), [node.as_str()], "lane {lane}");
        let n = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node.as_str())
            .unwrap();
        println!(
            "{lane:<18} {node:<6} {:<20} {:<26} {}",
            n["op"].as_str().unwrap(),
            local_error(n, lane),
            n["lanes"][lane]["fingerprint"]["description"]
                .as_str()
                .unwrap_or("-")
        );
    }
    for lane in ["ort", "tch", "candle"] {
        assert_eq!(introduced(&report, lane), Vec::<&str>::new(), "lane {lane}");
        for n in report["nodes"].as_array().unwrap() {
            assert_eq!(n["lanes"][lane]["verdict"], "ok", "{lane} at {}", n["name"]);
        }
    }
}

#[test]
fn a_planted_mistake_that_stops_showing_fails_the_case() {
    let d = tempfile::tempdir().unwrap();
    let model = case_file().with_file_name("models").join("planted.onnx");
    let text = std::fs::read_to_string(case_file())
        .unwrap()
        .replace(
            "\"models/planted.onnx\"",
            &format!("{:?}", model.display().to_string()),
        )
        // ln-eps patched back to the model's own epsilon: no mistake left.
        .replace("epsilon = 1e-12", "epsilon = 1e-5");
    let case = write(d.path(), "planted.toml", &text);
    let (code, report) = run_json(&case);
    assert_eq!(code, 1);
    assert!(introduced(&report, "ort:ln-eps").is_empty());
    let failures = report["failures"].to_string();
    assert!(
        failures.contains("ort:ln-eps: node `ln` (LayerNormalization) was declared diverged"),
        "{failures}"
    );
}

#[test]
fn a_bad_patch_is_one_line_naming_the_key_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let model = case_file().with_file_name("models").join("planted.onnx");
    let case = write(
        d.path(),
        "bad.toml",
        &format!(
            "[model]\npath = {:?}\n[[lane]]\nbackend = \"ort\"\npatch = {{ node = \"gelu\", attrs = {{ approximation = \"tanh\" }} }}\n",
            model.display().to_string()
        ),
    );
    let (code, _, err) = xdiff(&["run", case.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml: key `lane[0].patch.attrs.approximation`: node `gelu` (Gelu) has no attribute `approximation` in the ONNX spec (it defines: approximate)"),
        "{err}"
    );
}

/// `--repro` on the planted mistakes writes, per planted lane, a directory
/// whose `repro.toml` (the same patch on the one-node model) gives the same
/// introduced verdict at the same node, with the same local error; the
/// recorded outputs are the reference's, so the `expected` lane agrees.
#[test]
fn repro_of_each_planted_mistake_reproduces_its_introduced_verdict() {
    let d = tempfile::tempdir().unwrap();
    let rp = d.path().join("rp");
    let (code, out, err) = xdiff(&[
        "run",
        case_file().to_str().unwrap(),
        "--format",
        "json",
        "--repro",
        rp.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let report = &doc["cases"][0];
    let text = std::fs::read_to_string(case_file()).unwrap();
    let lanes = planted_lanes(&text);
    for (lane, node) in &lanes {
        let n = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node.as_str())
            .unwrap();
        let dir = n["lanes"][lane.as_str()]["repro"]
            .as_str()
            .unwrap_or_else(|| panic!("{lane}: no repro dir"));
        let (code, again) = run_json(&Path::new(dir).join("repro.toml"));
        assert_eq!(
            code, 1,
            "{lane}: the planted mistake is undeclared in the repro"
        );
        assert_eq!(introduced(&again, lane), [node.as_str()], "{lane}");
        assert_eq!(
            local_error(&again["nodes"][0], lane),
            local_error(n, lane),
            "{lane}: same local error"
        );
        let expected = &again["nodes"][0]["lanes"]["expected"];
        assert_eq!(expected["verdict"], "ok", "{lane}: {expected}");
    }
    assert_eq!(std::fs::read_dir(&rp).unwrap().count(), lanes.len());
}
