//! BatchNormalization in training mode (issue 13 items 1 and 4), through
//! `cases/batchnorm-train.toml`: the faithful lanes get Y and running_mean
//! right (torch's and candle's momentum is 1 − m) and differ only in the
//! running variance (unbiased), while the port lane, which copies ONNX's
//! momentum into torch's batch_norm, diverges in running_mean and is reported
//! as *introduced* at the BatchNormalization node. Needs libtorch and candle.
#![cfg(all(feature = "tch-backend", feature = "candle-backend"))]

use std::path::Path;

use xdiff::case;
use xdiff::outcome::{CaseReport, LaneResult, Origin, Verdict};
use xdiff::run;

fn reports() -> Vec<CaseReport> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/batchnorm-train.toml");
    let cases = case::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let backends = ["tch", "candle", "reference"].map(String::from).to_vec();
    cases
        .iter()
        .map(|c| run::run_case(c, &backends).expect("run").report)
        .collect()
}

fn bn<'a>(r: &'a CaseReport, lane: &str) -> &'a LaneResult {
    let n = r.nodes.iter().find(|n| n.name == "bn").expect("node `bn`");
    n.lanes
        .get(lane)
        .unwrap_or_else(|| panic!("no lane `{lane}`"))
}

fn output_verdict(l: &LaneResult, output: &str) -> Verdict {
    l.outputs
        .get(output)
        .unwrap_or_else(|| panic!("no output `{output}`: {:?}", l.outputs.keys()))
        .verdict
}

#[test]
fn momentum_port_is_introduced_at_the_batch_norm_and_faithful_lanes_differ_only_in_running_var() {
    let reports = reports();
    assert_eq!(reports.len(), 5);
    for r in &reports {
        let id = r.variant.clone().unwrap_or_default();
        let port = bn(r, "tch:port");
        assert_eq!(port.verdict, Verdict::Diverged, "{id}: {port:?}");
        assert_eq!(port.origin, Some(Origin::Introduced), "{id}");
        assert!(port.declared.is_some(), "{id}: the case declares it");
        assert_eq!(
            output_verdict(port, "running_mean"),
            Verdict::Diverged,
            "{id}"
        );
        assert_eq!(r.first_divergence["tch:port"].node, "bn", "{id}");
        for faithful in ["tch", "candle"] {
            let l = bn(r, faithful);
            assert_eq!(output_verdict(l, "Y"), Verdict::Ok, "{id} {faithful}");
            assert_eq!(
                output_verdict(l, "running_mean"),
                Verdict::Ok,
                "{id} {faithful}"
            );
            assert_eq!(
                output_verdict(l, "running_var"),
                Verdict::Diverged,
                "{id} {faithful}"
            );
        }
        assert!(r.passed, "{id}: {:?}", r.failures);
    }
}
