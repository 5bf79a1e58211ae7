//! Extra lanes: idiomatic-port lanes `<backend>:port` (issue 5 item 4) and
//! the cross-device comparison `<backend>@cpu` (issue 7 item 1), through
//! `xdiff::run`. Needs libtorch and candle (the default features).
#![cfg(all(feature = "tch-backend", feature = "candle-backend"))]

use std::path::PathBuf;

use xdiff::backend::Device;
use xdiff::case::{self, Case};
use xdiff::outcome::{CaseReport, LaneResult, Origin, Verdict};
use xdiff::run;

/// A 1x1x3x3 ramp resized 3 -> 5 on H and W by scales 1.7 (nearest, half_pixel,
/// round_prefer_floor), then `tail` nodes after it.
fn case_text(tail: &str, outputs: &str, extra: &str) -> String {
    format!(
        r#"
name = "port-resize"
seed = 1
{extra}

[model.graph]
opset = 19
inputs = [{{ name = "X", shape = [1, 1, 3, 3] }}]
outputs = [{outputs}]

[[model.graph.initializers]]
name = "scales"
shape = [4]
values = [1.0, 1.0, 1.7, 1.7]

[[model.graph.nodes]]
name = "up"
op = "Resize"
inputs = ["X", "", "scales"]
outputs = ["U"]
attrs = {{ mode = "nearest", coordinate_transformation_mode = "half_pixel", nearest_mode = "round_prefer_floor" }}
{tail}

[inputs.X]
dist = "ramp"
low = -1.0
high = 1.0
"#
    )
}

const RELU: &str = r#"
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["U"]
outputs = ["Y"]
"#;

fn load(text: &str) -> (tempfile::TempDir, Vec<Case>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("case.toml");
    std::fs::write(&path, text).expect("write case");
    let cases = case::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, cases)
}

fn backends() -> Vec<String> {
    ["tch", "candle", "reference"].map(String::from).to_vec()
}

fn lane<'a>(r: &'a CaseReport, node: &str, lane: &str) -> &'a LaneResult {
    let n = r
        .nodes
        .iter()
        .find(|n| n.name == node)
        .unwrap_or_else(|| panic!("no node `{node}`"));
    n.lanes
        .get(lane)
        .unwrap_or_else(|| panic!("node `{node}` has no lane `{lane}`: {:?}", n.lanes.keys()))
}

#[test]
fn port_lanes_diverge_at_the_resize_while_faithful_lanes_agree() {
    let (_d, cases) = load(&case_text("", r#""U""#, r#"port = ["tch", "candle"]"#));
    let c = &cases[0];
    assert_eq!(c.port, ["tch", "candle"]);
    let r = run::run_case(c, &backends()).expect("run").report;
    let names: Vec<&str> = r.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["reference", "tch", "candle", "tch:port", "candle:port"]
    );
    for faithful in ["tch", "candle"] {
        let l = lane(&r, "up", faithful);
        assert_eq!(l.verdict, Verdict::Ok, "{faithful}: {l:?}");
        assert!(
            !l.lowering
                .as_deref()
                .unwrap_or("")
                .contains("idiomatic port"),
            "{l:?}"
        );
        assert!(!r.first_divergence.contains_key(faithful));
    }
    for (port, op) in [
        ("tch:port", "native: upsample_nearest2d (idiomatic port)"),
        ("candle:port", "native: upsample_nearest2d (idiomatic port)"),
    ] {
        let l = lane(&r, "up", port);
        assert_eq!(l.verdict, Verdict::Diverged, "{port}: {l:?}");
        assert_eq!(l.origin, Some(Origin::Introduced), "{port}");
        assert_eq!(l.lowering.as_deref(), Some(op), "{port}");
        assert_eq!(r.first_divergence[port].node, "up");
        // Output size follows the node: floor(3 · 1.7) = 5.
        let shape = r.nodes[0].outputs[0].shape.clone();
        assert_eq!(shape, Some(vec![1, 1, 5, 5]));
        let info = r.lanes.iter().find(|x| x.name == port).expect("lane info");
        assert!(
            info.settings
                .get("resize")
                .is_some_and(|s| s.contains("idiomatic port")),
            "{:?}",
            info.settings
        );
        // The fingerprint names the convention the port actually follows.
        let fp = l
            .fingerprint
            .as_ref()
            .expect("fingerprint on the port lane");
        assert!(!fp.attrs.is_empty(), "{fp:?}");
    }
    // An undeclared introduced divergence fails the case.
    assert!(!r.passed);
    assert!(r.failures.iter().any(|f| f.starts_with("tch:port:")));
}

#[test]
fn port_divergence_is_inherited_after_the_resize() {
    let (_d, cases) = load(&case_text(RELU, r#""Y""#, r#"port = ["tch", "candle"]"#));
    let r = run::run_case(&cases[0], &backends()).expect("run").report;
    for port in ["tch:port", "candle:port"] {
        assert_eq!(lane(&r, "up", port).origin, Some(Origin::Introduced));
        let relu = lane(&r, "relu", port);
        assert_eq!(relu.verdict, Verdict::Diverged, "{port}: {relu:?}");
        assert_eq!(relu.origin, Some(Origin::Inherited), "{port}");
        // Relu lowers as usual in the port lane.
        assert!(
            !relu.lowering.as_deref().unwrap_or("").contains("port"),
            "{relu:?}"
        );
        // Only the Resize counts as a failure.
        assert!(!r
            .failures
            .iter()
            .any(|f| f.starts_with(port) && f.contains("relu")));
    }
    for faithful in ["tch", "candle"] {
        assert_eq!(lane(&r, "relu", faithful).verdict, Verdict::Ok);
    }
}

#[test]
fn declared_port_divergences_pass() {
    let extra = r#"
port = ["tch", "candle"]

[[expect]]
backend = "tch:port"
op = "Resize"
verdict = "diverged"
reason = "F.interpolate nearest is asymmetric/floor"

[[expect]]
backend = "candle:port"
op = "Resize"
verdict = "diverged"
reason = "candle upsample_nearest2d is asymmetric/floor"
"#;
    let (_d, cases) = load(&case_text(RELU, r#""Y""#, extra));
    let r = run::run_case(&cases[0], &backends()).expect("run").report;
    assert!(r.passed, "{:?}", r.failures);
}

#[test]
fn port_rejects_backends_without_a_port_lane() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case.toml");
    std::fs::write(&path, case_text("", r#""U""#, r#"port = ["ort"]"#)).unwrap();
    let e = case::load(&path).expect_err("error").to_string();
    assert!(e.contains("key `port`") && e.contains("`ort`"), "{e}");
}

#[test]
fn cross_device_cpu_against_cpu_is_exact() {
    let (_d, cases) = load(&case_text(RELU, r#""Y""#, ""));
    let c = &cases[0];
    // No GPU here: the case runs on the CPU, so no cross-device lanes by default.
    assert_eq!(run::cross_device_baseline(c), None);
    for b in ["tch", "candle"] {
        let per_node = run::cross_device_compare(c, b, Device::Cpu, Device::Cpu).expect("run");
        assert_eq!(per_node.len(), 2, "{b}");
        for cmp in per_node {
            let cmp = cmp.expect("a comparison per node");
            let m = cmp.metrics().expect("metrics");
            assert!(cmp.ok(), "{b}: {cmp:?}");
            assert_eq!((m.max_abs, m.mismatches, m.max_ulp), (0.0, 0, 0), "{b}");
        }
    }
    // The whole report path: lanes `<backend>@cpu`, `cross_device` on the device lane.
    let r = run::run_case_with_baseline(c, &backends(), Some(Device::Cpu))
        .expect("run")
        .report;
    let names: Vec<&str> = r.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["reference", "tch", "tch@cpu", "candle", "candle@cpu"]
    );
    for node in ["up", "relu"] {
        for b in ["tch", "candle"] {
            let l = lane(&r, node, b);
            let m = l
                .cross_device
                .as_ref()
                .and_then(|c| c.metrics())
                .unwrap_or_else(|| panic!("{b} {node}: {l:?}"));
            assert_eq!((m.max_abs, m.mismatches), (0.0, 0));
            let twin = lane(&r, node, &format!("{b}@cpu"));
            assert!(twin.cross_device.is_none());
            assert_eq!(twin.verdict, l.verdict);
        }
    }
    let json = serde_json::to_value(&r).expect("json");
    assert!(json["nodes"][0]["lanes"]["tch"]["cross_device"]["max_abs"] == 0.0);
    assert!(json["nodes"][0]["lanes"]["tch@cpu"]
        .get("cross_device")
        .is_none());
}

#[test]
fn cross_device_can_be_turned_off_and_cuda_without_a_gpu_is_a_device_error() {
    let (_d, cases) = load(&case_text(
        "",
        r#""U""#,
        "device = \"cuda:0\"\n[options]\ncross_device = false",
    ));
    let mut c = cases[0].clone();
    assert!(!c.cross_device);
    assert_eq!(run::cross_device_baseline(&c), None);
    c.cross_device = true;
    assert_eq!(run::cross_device_baseline(&c), Some(Device::Cpu));
    if tch::Cuda::is_available() {
        return;
    }
    let e = run::run_case(&c, &backends()).expect_err("no GPU here");
    let msg = e.to_string();
    assert!(
        msg.contains("cuda:0") && msg.contains("not available"),
        "{msg}"
    );
}

/// The run keeps the tensors of each lane's first divergence, so reporters
/// (heatmaps) draw the run that was reported without running it again.
#[test]
fn evidence_holds_the_first_divergence_of_each_diverged_lane() {
    let (_d, cases) = load(&case_text(RELU, r#""Y""#, r#"port = ["tch", "candle"]"#));
    let run = run::run_case(&cases[0], &backends()).expect("run");
    let lanes: Vec<&str> = run.evidence.lanes.keys().map(String::as_str).collect();
    assert_eq!(lanes, ["candle:port", "tch:port"]);
    for port in ["tch:port", "candle:port"] {
        let node = &run.evidence.lanes[port];
        assert_eq!(node.node, run.report.first_divergence[port].index);
        let pair = run.evidence.get(port, "U").expect("the Resize output");
        assert_eq!(pair.got.shape(), [1, 1, 5, 5]);
        assert_eq!(pair.want.shape(), pair.got.shape());
        let m = run.report.nodes[0].lanes[port].outputs["U"]
            .comparison
            .as_ref()
            .and_then(|c| c.metrics())
            .expect("metrics");
        let diff = xdiff::diff::compare(
            &pair.got,
            &pair.want,
            pair.got.dtype(),
            xdiff::diff::Tolerance::EXACT,
        );
        assert_eq!(diff.metrics().expect("metrics").max_abs, m.max_abs);
        // Only the first divergence is kept, not the inherited Relu.
        assert!(run.evidence.get(port, "Y").is_none());
    }
    assert!(run.evidence.get("tch", "U").is_none());
}
