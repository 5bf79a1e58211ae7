//! The idiomatic-port lanes' porting mistakes (issue 13 item 4), one case
//! file each under `cases/port-*.toml`: every mistake must be reported as
//! *introduced* at the ported node (declared, so the case passes), inherited
//! by the nodes after it, and absent from the faithful lanes. Needs libtorch
//! and candle (the default features).
#![cfg(all(feature = "tch-backend", feature = "candle-backend"))]

use std::path::{Path, PathBuf};

use xdiff::case;
use xdiff::outcome::{CaseReport, LaneResult, Origin, Verdict};
use xdiff::run;

/// One port case: its file, the port lanes, the nodes each lane ports
/// wrongly, the nodes downstream of them and the lane-settings key that
/// names the mistake.
struct PortCase {
    file: &'static str,
    lanes: &'static [&'static str],
    ported: &'static [&'static str],
    downstream: &'static [&'static str],
    setting: &'static str,
}

const CASES: &[PortCase] = &[
    PortCase {
        file: "port-depth.toml",
        lanes: &["tch:port"],
        ported: &["d2s"],
        downstream: &["post"],
        setting: "depth-to-space",
    },
    PortCase {
        file: "port-recurrent.toml",
        lanes: &["tch:port"],
        ported: &["lstm", "gru"],
        downstream: &["lpost", "gpost"],
        setting: "recurrent",
    },
    PortCase {
        file: "port-softmax.toml",
        lanes: &["tch:port", "candle:port"],
        ported: &["sm", "lsm"],
        downstream: &["post", "lpost"],
        setting: "softmax",
    },
    PortCase {
        file: "port-quantize.toml",
        lanes: &["tch:port", "candle:port"],
        ported: &["q"],
        downstream: &["dq"],
        setting: "quantize",
    },
];

fn case_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cases")
        .join(file)
}

fn run_case(file: &str) -> CaseReport {
    let cases = case::load(&case_path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(cases.len(), 1, "{file}");
    let c = &cases[0];
    run::run_case(c, &c.backends)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .report
}

fn lane<'a>(r: &'a CaseReport, node: &str, lane: &str) -> &'a LaneResult {
    let n = r
        .nodes
        .iter()
        .find(|n| n.name == node)
        .unwrap_or_else(|| panic!("{}: no node `{node}`", r.case));
    n.lanes
        .get(lane)
        .unwrap_or_else(|| panic!("{}: `{node}` has no lane `{lane}`", r.case))
}

#[test]
fn each_port_mistake_is_introduced_at_its_node_and_inherited_after_it() {
    for pc in CASES {
        let r = run_case(pc.file);
        let f = pc.file;
        assert!(r.passed, "{f}: {:?}", r.failures);
        for &port in pc.lanes {
            for &node in pc.ported {
                let l = lane(&r, node, port);
                assert_eq!(l.verdict, Verdict::Diverged, "{f} {node} {port}: {l:?}");
                assert_eq!(l.origin, Some(Origin::Introduced), "{f} {node} {port}");
                assert!(l.declared.is_some(), "{f} {node} {port}: undeclared");
                let how = l.lowering.as_deref().unwrap_or("");
                assert!(how.contains("idiomatic port"), "{f} {node} {port}: {how}");
            }
            // The first divergence is the first ported node.
            assert_eq!(r.first_divergence[port].node, pc.ported[0], "{f} {port}");
            // Downstream, the port lane inherits the divergence: never new.
            for &node in pc.downstream {
                let l = lane(&r, node, port);
                assert_eq!(l.verdict, Verdict::Diverged, "{f} {node} {port}: {l:?}");
                assert_eq!(l.origin, Some(Origin::Inherited), "{f} {node} {port}");
            }
            let info = r.lanes.iter().find(|x| x.name == port).expect("lane");
            let s = info.settings.get(pc.setting).map(String::as_str);
            assert!(
                s.is_some_and(|s| s.starts_with("idiomatic port")),
                "{f} {port}: {:?}",
                info.settings
            );
        }
        // The faithful lanes agree at every node.
        let faithful = ["ort", "tch", "candle"];
        for n in &r.nodes {
            for b in faithful {
                let l = lane(&r, &n.name, b);
                assert_eq!(l.verdict, Verdict::Ok, "{f} {} {b}: {l:?}", n.name);
            }
        }
    }
}
