//! Lane isolation with real crashes (docs/isolation.md): a lane that
//! segfaults, aborts, hangs or throws a C++ exception gives an `error`
//! verdict naming the signal or timeout and the last node that started,
//! the run's other lanes keep their results, and the run exits 1. The
//! crashing ops (`backend/candle/test_ops.rs`) exist only under
//! `XDIFF_TEST_OPS=1`, which these tests set for the xdiff they start.
#![cfg(all(feature = "tch-backend", feature = "candle-backend"))]

use std::process::Command;

use serde_json::Value;

mod common;
use common::{write, CUBIC};

/// Relu, then `op` (named `boom`) on candle only, then Neg.
fn crash_case(op: &str) -> String {
    format!(
        r#"
[model.graph]
opset = 17
inputs = [{{ name = "X", shape = [2, 3] }}]
outputs = ["Z"]
[[model.graph.nodes]]
op = "Relu"
name = "relu"
inputs = ["X"]
outputs = ["Y"]
[[model.graph.nodes]]
op = "{op}"
name = "boom"
inputs = ["Y"]
outputs = ["Z"]
"#
    )
}

/// Runs xdiff (`--format json`) on `case` with the test ops enabled: exit
/// code, the JSON report's first case, stderr.
fn run(case: &str, extra: &[&str]) -> (i32, Value, String) {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "case.toml", case);
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(["run", p.to_str().unwrap(), "--format", "json"])
        .args(["--backends", "reference,tch,candle"])
        .args(extra)
        .env(xdiff::isolate::TEST_OPS_ENV, "1")
        .output()
        .expect("run xdiff");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (
        out.status.code().unwrap_or(-1),
        doc["cases"][0].clone(),
        stderr,
    )
}

fn lane<'a>(case: &'a Value, name: &str) -> &'a Value {
    let lanes = case["lanes"].as_array().unwrap();
    lanes.iter().find(|l| l["name"] == name).unwrap()
}

fn verdict<'a>(case: &'a Value, node: usize, lane: &str) -> &'a Value {
    &case["nodes"][node]["lanes"][lane]
}

/// The candle lane's error, after checking what every crash shares: exit
/// 1, candle's nodes are errors, tch's Relu still agrees with the reference.
fn crashed_candle(op: &str, extra: &[&str]) -> String {
    let (code, case, err) = run(&crash_case(op), extra);
    assert_eq!(code, 1, "{case}\n{err}");
    let candle = lane(&case, "candle");
    assert_eq!(candle["settings"]["isolation"], "lane", "{candle}");
    for node in 0..2 {
        assert_eq!(verdict(&case, node, "candle")["verdict"], "error", "{case}");
    }
    assert_eq!(verdict(&case, 0, "tch")["verdict"], "ok", "{case}");
    assert_eq!(verdict(&case, 0, "reference")["verdict"], "ok", "{case}");
    assert!(lane(&case, "tch").get("error").is_none(), "{case}");
    candle["error"].as_str().unwrap().to_string()
}

/// Variants run ahead of the one reported (`xdiff::ahead`) and queue for
/// the lane workers: a worker that crashes on one variant is replaced for
/// the variants queued behind it, and every variant is reported, in order,
/// as it would be alone.
#[test]
fn crashes_among_variants_run_ahead_stay_their_own() {
    let ops = [
        "Neg",
        "XdiffTestSegfault",
        "Abs",
        "XdiffTestAbort",
        "Sigmoid",
        "Relu",
    ];
    let grid = ops.map(|o| format!("\"{o}\"")).join(", ");
    let case = format!(
        "{}\n[params]\nop = \"Neg\"\n[[sweep]]\nname = \"ops\"\n[sweep.grid]\nop = [{grid}]\n",
        crash_case("${op}")
    );
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "case.toml", &case);
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(["run", p.to_str().unwrap(), "--format", "json"])
        .args(["--backends", "reference,ort,tch,candle"])
        .env(xdiff::isolate::TEST_OPS_ENV, "1")
        .output()
        .expect("run xdiff");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), ops.len(), "{stdout}");
    for (i, (case, op)) in cases.iter().zip(ops).enumerate() {
        let id = case["variant"].as_str().unwrap_or_default();
        assert!(id.contains(op), "variant {i} is reported in order: {id}");
        let candle = lane(case, "candle");
        match op {
            "Neg" | "Abs" | "Sigmoid" | "Relu" => {
                assert!(candle.get("error").is_none(), "{case}");
                assert_eq!(verdict(case, 1, "candle")["verdict"], "ok", "{case}");
                assert_eq!(verdict(case, 1, "ort")["verdict"], "ok", "{case}");
            }
            _ => {
                let e = candle["error"].as_str().unwrap_or_default();
                assert!(
                    e.contains("lane crashed: SIG") && e.contains(op),
                    "{i}: {e}"
                );
            }
        }
        assert_eq!(verdict(case, 0, "tch")["verdict"], "ok", "{case}");
    }
}

#[test]
fn a_segfault_names_the_signal_and_the_node() {
    let e = crashed_candle("XdiffTestSegfault", &[]);
    assert!(
        e.contains("lane crashed: SIGSEGV (signal 11) in node 1 'boom' (XdiffTestSegfault)"),
        "{e}"
    );
}

#[test]
fn an_abort_names_the_signal_and_the_node() {
    let e = crashed_candle("XdiffTestAbort", &[]);
    assert!(
        e.contains("lane crashed: SIGABRT (signal 6) in node 1 'boom' (XdiffTestAbort)"),
        "{e}"
    );
}

#[test]
fn a_hang_is_killed_at_the_lane_timeout() {
    let e = crashed_candle("XdiffTestHang", &["--lane-timeout", "2"]);
    assert!(
        e.contains("lane timed out after 2 s (--lane-timeout) in node 1 'boom' (XdiffTestHang)"),
        "{e}"
    );
}

#[test]
fn test_ops_do_not_exist_without_the_variable() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "case.toml", &crash_case("XdiffTestSegfault"));
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(["run", p.to_str().unwrap(), "--backends", "reference,candle"])
        .env_remove(xdiff::isolate::TEST_OPS_ENV)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`XdiffTestSegfault` is not an ONNX operator"),
        "{err}"
    );
}

/// Gather with an index past the axis: libtorch's `index_select` kernel
/// throws (a C++ exception, `TORCH_CHECK`), which tch turns into an error:
/// an error verdict in process and, the same, in a worker.
const KERNEL_THROWS: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [3, 2] }]
outputs = ["Z"]
[[model.graph.nodes]]
op = "Relu"
name = "relu"
inputs = ["X"]
outputs = ["Y"]
[[model.graph.nodes]]
op = "Gather"
name = "gather"
inputs = ["Y", "I"]
outputs = ["Z"]
attrs = { axis = 0 }
[[model.graph.initializers]]
name = "I"
dtype = "int64"
shape = [1]
values = [7]
"#;

#[test]
fn a_cpp_exception_in_a_kernel_stays_an_error_verdict() {
    let (code, isolated, err) = run(KERNEL_THROWS, &[]);
    assert_eq!(code, 1, "{isolated}\n{err}");
    let (_, in_process, _) = run(KERNEL_THROWS, &["--isolation", "none"]);
    let tch = verdict(&isolated, 1, "tch");
    assert_eq!(tch["verdict"], "error", "{isolated}");
    assert!(tch["message"].as_str().unwrap().contains("index"), "{tch}");
    assert_eq!(tch, verdict(&in_process, 1, "tch"));
    assert!(lane(&isolated, "tch").get("error").is_none());
    assert_eq!(verdict(&isolated, 0, "tch")["verdict"], "ok");
    assert_eq!(verdict(&isolated, 0, "candle")["verdict"], "ok");
    assert_eq!(lane(&in_process, "tch")["settings"]["isolation"], "none");
}

/// libtorch starts with its AVX2 kernels and libgomp's passive wait policy,
/// in its worker and in one process alike, unless the user set them
/// (`isolate::torch_env`): a case gives the same report on every x86
/// machine (docs/runtimes.md).
#[test]
fn libtorch_runs_the_same_kernels_in_every_process() {
    let want = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.into());
    for extra in [&[][..], &["--isolation", "none"][..]] {
        let (_, case, err) = run(KERNEL_THROWS, extra);
        let settings = &lane(&case, "tch")["settings"];
        assert_eq!(
            settings["cpu capability"],
            want("ATEN_CPU_CAPABILITY", "avx2").as_str(),
            "{extra:?}: {settings}\n{err}"
        );
        let policy = match std::env::var("GOMP_SPINCOUNT") {
            Ok(n) if std::env::var_os("OMP_WAIT_POLICY").is_none() => format!("GOMP_SPINCOUNT={n}"),
            _ => want("OMP_WAIT_POLICY", "PASSIVE"),
        };
        assert_eq!(
            settings["omp wait policy"],
            policy.as_str(),
            "{extra:?}: {settings}"
        );
    }
}

/// The library with workers (the executable named explicitly, as a
/// program that is not xdiff must) gives the same node verdicts,
/// first divergences, lane errors, notes and model outputs as in process,
/// patched lanes included.
#[test]
fn workers_give_the_in_process_verdicts() {
    use std::path::Path;
    use xdiff::run::{run_case_with, RunOptions};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/planted.toml");
    let cases = xdiff::case::load(&file).unwrap();
    let iso = xdiff::isolate::Isolation {
        exe: env!("CARGO_BIN_EXE_xdiff").into(),
        timeout: std::time::Duration::from_secs(600),
    };
    for c in &cases {
        let plain = run_case_with(c, &c.backends, RunOptions::for_case(c)).unwrap();
        let opts = RunOptions {
            isolation: Some(iso.clone()),
            ..RunOptions::for_case(c)
        };
        let isolated = run_case_with(c, &c.backends, opts).unwrap();
        let (a, b) = (&plain.report, &isolated.report);
        assert_eq!(json(&a.nodes), json(&b.nodes), "{}", c.id());
        assert_eq!(json(&a.first_divergence), json(&b.first_divergence));
        let errors = |r: &xdiff::outcome::CaseReport| -> Vec<Option<String>> {
            r.lanes.iter().map(|l| l.error.clone()).collect()
        };
        assert_eq!(errors(a), errors(b));
        // The deployed outputs (ORT's untapped model, which a worker sends
        // after the trace) reach the report the same way.
        let deployed = |r: &xdiff::outcome::CaseReport| -> Vec<String> {
            let lanes = r.lanes.iter();
            lanes.map(|l| json(&(&l.notes, &l.model_outputs))).collect()
        };
        assert_eq!(deployed(a), deployed(b), "{}", c.id());
        let ort = b.lanes.iter().find(|l| l.name == "ort").expect("ort lane");
        assert!(
            ort.model_outputs.as_ref().is_some_and(|m| m.deployed),
            "{ort:?}"
        );
        let modes: Vec<_> = b
            .lanes
            .iter()
            .map(|l| l.settings.get("isolation"))
            .collect();
        assert!(
            modes.iter().any(|m| m.is_some_and(|m| m == "lane")),
            "{modes:?}"
        );
    }
}

/// JSON of a report part, for comparing two runs.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

/// Variants run ahead queue for the candle worker, and the parent writes
/// their jobs to it ahead of their turn; meanwhile each variant's candle
/// lane asks the parent for the output of a node it cannot run (bicubic
/// Resize). Every variant still gets its own answer and its own trace: the
/// bridged node, then the nodes after it judged on candle.
#[test]
fn jobs_written_ahead_wait_while_a_lane_asks_for_a_value() {
    let lows: Vec<String> = (0..24).map(|i| format!("{:.1}", -1.0 - i as f64)).collect();
    let case = format!(
        "{CUBIC}\n[params]\nlow = -1.0\n[inputs.X]\ndist = \"uniform\"\nlow = \"${{low}}\"\n\
         high = 1.0\n[[sweep]]\nname = \"low\"\n[sweep.grid]\nlow = [{}]\n",
        lows.join(", ")
    );
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "case.toml", &case);
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(["run", p.to_str().unwrap(), "--format", "json"])
        .args(["--backends", "reference,ort,candle"])
        .output()
        .expect("run xdiff");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), lows.len(), "{stdout}");
    for (case, low) in cases.iter().zip(&lows) {
        let id = case["variant"].as_str().unwrap_or_default();
        assert!(id.contains(&format!("low={low}")), "in order: {id}");
        assert!(lane(case, "candle").get("error").is_none(), "{case}");
        assert_eq!(verdict(case, 0, "candle")["bridged"], "reference", "{case}");
        assert_eq!(verdict(case, 1, "candle")["verdict"], "ok", "{case}");
        assert_eq!(verdict(case, 2, "candle")["verdict"], "ok", "{case}");
    }
}
