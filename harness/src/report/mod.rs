//! Reporters: one stream of [`Event`]s (each finished case with its
//! evidence, the heatmaps drawn for it, each finished sweep, the end of the
//! run) fanned out to the terminal, JSON, Markdown, JUnit and matrix
//! writers, after nextest's reporter design. Reporters only report: they
//! read the [`crate::outcome`] schema and never run an engine.

pub mod digest;
pub mod heatmap;
pub mod json;
pub mod junit;
pub mod links;
pub mod markdown;
pub mod matrix;
pub mod rows;
pub mod sweep;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lane::EXPECTED;
use crate::outcome::{CaseReport, CaseRun, LaneInfo, Origin, Verdict};
use crate::partition::ShardInfo;
use links::HeatmapLink;
use sweep::Matrix;

/// Version of the JSON report layout; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// What happens during a run, in order: per case, `HeatmapsWritten` (with
/// `--out`), `SweepFinished` when this case starts another case file after
/// a swept one, then `CaseFinished`; at the end, `SweepFinished` for a
/// sweep still open, then `RunFinished`.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Heatmaps drawn for the case about to finish; `skipped`: divergences
    /// of the run so far left undrawn (image budget).
    HeatmapsWritten {
        links: &'a [HeatmapLink],
        skipped: usize,
    },
    /// The conformance matrix of a swept case file whose variants are all done.
    SweepFinished(&'a Matrix),
    CaseFinished(&'a CaseRun),
    /// A case file of a directory run that could not be loaded; the other
    /// cases still run, and the run ends with exit code 2.
    CaseNotLoaded(&'a LoadError),
    /// The totals, and every conformance matrix of the run.
    RunFinished {
        summary: &'a Summary,
        sweeps: &'a [Matrix],
    },
}

/// A sink of run events.
pub trait Reporter {
    fn handle(&mut self, event: &Event) -> std::io::Result<()>;
}

/// Per-lane tallies over cases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaneTally {
    /// Cases where every node of this lane is ok (or declared).
    pub cases_ok: usize,
    pub cases: usize,
    pub nodes: BTreeMap<String, usize>,
    /// Nodes compared with the reference, and nodes, over all its cases.
    pub compared: usize,
    pub total: usize,
}

impl LaneTally {
    /// `566/566 compared`
    pub fn coverage(&self) -> String {
        format!("{}/{} compared", self.compared, self.total)
    }
}

/// A case source of a directory run that could not be loaded: the file and
/// why (the one line a single-file run prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadError {
    pub file: String,
    pub error: String,
}

/// Totals over a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub cases: usize,
    pub passed: usize,
    pub failed: usize,
    pub lanes: BTreeMap<String, LaneTally>,
    /// Outputs whose comparison is vacuous (see `OutputInfo::vacuous`).
    pub vacuous: usize,
    /// Case files of a directory run that could not be loaded (not run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_loaded: Vec<LoadError>,
    /// With `--partition`: which shard of the run this report holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<ShardInfo>,
    pub wall_ms: f64,
}

impl Summary {
    /// Whether every case ran and passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0 && self.not_loaded.is_empty()
    }

    /// `, 1 not loaded` when some case files could not be loaded.
    pub fn not_loaded_count(&self) -> String {
        match self.not_loaded.len() {
            0 => String::new(),
            n => format!(", {n} not loaded"),
        }
    }

    pub fn add(&mut self, r: &CaseReport) {
        self.cases += 1;
        if r.passed {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        self.vacuous += r
            .nodes
            .iter()
            .flat_map(|n| &n.outputs)
            .filter(|o| o.vacuous)
            .count();
        for lane in &r.lanes {
            let t = self.lanes.entry(lane.name.clone()).or_default();
            t.cases += 1;
            if let Some(c) = lane.coverage {
                t.compared += c.compared;
                t.total += c.total;
            }
            let mut all_ok = true;
            for n in &r.nodes {
                if let Some(x) = n.lanes.get(&lane.name) {
                    *t.nodes.entry(x.verdict.name().to_string()).or_default() += 1;
                    let inherited = x.origin == Some(Origin::Inherited);
                    if x.verdict != Verdict::Ok
                        && x.declared.is_none()
                        && !inherited
                        && !(lane.name == EXPECTED && x.verdict == Verdict::Skipped)
                    {
                        all_ok = false;
                    }
                }
            }
            if all_ok {
                t.cases_ok += 1;
            }
        }
    }
}

/// `4/5 compared` for a lane of a case, empty before it is judged.
pub fn coverage(lane: &LaneInfo) -> String {
    lane.coverage
        .map(|c| format!("{}/{} compared", c.compared, c.total))
        .unwrap_or_default()
}

/// Formats a metric compactly (`5.0e-1`, `0`).
pub fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_infinite() {
        "inf".into()
    } else {
        format!("{v:.1e}")
    }
}
