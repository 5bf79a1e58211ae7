//! The report schema: what one case's run found, per node and lane
//! ([`CaseReport`], serialized as docs/report-json.md), and the tensors
//! behind its divergences ([`Evidence`]), handed together to the reporters
//! as a [`CaseRun`]. Reporters depend on this module, never on the
//! orchestration that fills it (`run`) or on the engines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diff::{Comparison, Tolerance};
use crate::fingerprint::Fingerprint;
use crate::tensor::{DType, Tensor};

/// One case's run: its report and the tensors reporters draw.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub report: CaseReport,
    pub evidence: Evidence,
}

/// Verdict of one node (or output) in one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Not run: an input came from a node that did not run, or the reference has no value.
    Skipped,
    Unsupported,
    Diverged,
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skipped => "skipped",
            Verdict::Unsupported => "unsupported",
            Verdict::Diverged => "diverged",
            Verdict::Error => "error",
        }
    }
}

/// Whether a divergence started at this node or came in through its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Introduced,
    Inherited,
}

/// One output of one node in one lane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputResult {
    pub verdict: Verdict,
    /// The total (propagated) comparison: this lane's value against the
    /// reference's own, under the case tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The local comparison: this lane's value against the reference
    /// evaluated on this lane's own inputs to the node, under the op's error
    /// bound (docs/tolerance.md; `metrics.bound_ratio` is error / bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Comparison>,
}

impl OutputResult {
    /// An output with its total comparison and no local one yet.
    pub fn new(verdict: Verdict, comparison: Option<Comparison>) -> OutputResult {
        OutputResult {
            verdict,
            comparison,
            local: None,
        }
    }

    /// Whether the output was compared with the reference: in total, or on
    /// the lane's own inputs (where the reference has no value of its own).
    pub fn compared(&self) -> bool {
        self.comparison.is_some() || self.local.is_some()
    }
}

/// One node in one lane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaneResult {
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lowering: Option<String>,
    /// The lane could not run the node and took its outputs from this lane,
    /// so the nodes after it still ran (and were judged on their own inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The declared divergence this verdict matches, if any (its reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    /// Per output, in node output order.
    pub outputs: BTreeMap<String, OutputResult>,
    /// Which convention an introduced divergence actually follows (issue 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Cross-device (issue 7): this lane's values (on the case's GPU) compared
    /// with the same backend's on the CPU (lane `<backend>@cpu`), the CPU
    /// value taken as the baseline; for a node with several outputs, the
    /// first output outside tolerance, else the first output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_device: Option<Comparison>,
    /// The node's local comparison (see [`OutputResult::local`]): for a
    /// node with several outputs, the first output past its bound, else the
    /// first output. A node exceeding its bound *introduced* a divergence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Comparison>,
    /// Why the node has no local comparison in this lane (the reference
    /// cannot run it on this lane's inputs); it then gets no origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_note: Option<String>,
    /// With `--repro DIR`: the backend-test directory written for this
    /// introduced divergence (`DIR/<case>--<node>--<lane>`), see `crate::repro`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repro: Option<String>,
}

impl LaneResult {
    /// The local comparison in a few characters: the worst element's error
    /// over its bound (`0.25×bound`), `n/a` when the reference could not
    /// evaluate the node on this lane's inputs, empty when not compared.
    pub fn local_summary(&self) -> String {
        match (&self.local, &self.local_note) {
            (Some(Comparison::Metrics(m)), _) => match m.bound_ratio {
                Some(r) if r > 0.0 && r < 0.01 => "<0.01×bound".into(),
                Some(r) if r.is_finite() => format!("{r:.2}×bound"),
                Some(_) => "∞×bound".into(),
                None => String::new(),
            },
            (Some(Comparison::ShapeMismatch { .. }), _) => "shape".into(),
            (Some(Comparison::DtypeMismatch { .. }), _) => "dtype".into(),
            (None, Some(_)) => "n/a".into(),
            (None, None) => String::new(),
        }
    }

    /// A result with `verdict` and nothing else yet.
    pub fn new(verdict: Verdict) -> LaneResult {
        LaneResult {
            verdict,
            message: None,
            lowering: None,
            bridged: None,
            origin: None,
            declared: None,
            outputs: BTreeMap::new(),
            fingerprint: None,
            cross_device: None,
            local: None,
            local_note: None,
            repro: None,
        }
    }
}

/// One node across lanes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub index: usize,
    pub name: String,
    pub op: String,
    /// The op's accuracy class, which sets its local bound (docs/tolerance.md).
    pub class: String,
    pub outputs: Vec<OutputInfo>,
    pub lanes: BTreeMap<String, LaneResult>,
}

/// Shape and dtype of an output as the reference computed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputInfo {
    pub name: String,
    pub shape: Option<Vec<usize>>,
    pub dtype: Option<DType>,
    pub tolerance: Option<Tolerance>,
    /// The comparison cannot tell anything: the reference's value is zero,
    /// or below the tolerance, everywhere (any lane value that small agrees).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vacuous: bool,
}

/// How many of a case's nodes a lane compared with the reference (for the
/// reference lane itself: how many it computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub compared: usize,
    pub total: usize,
}

/// One lane (backend or expected data) of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaneInfo {
    pub name: String,
    pub settings: BTreeMap<String, String>,
    pub wall_ms: f64,
    pub notes: Vec<String>,
    /// The whole lane failed (session creation, run); every node is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Nodes compared / total, set once the case is judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// The graph outputs compared with the reference's under the case
    /// (application) tolerance; `None` where nothing could be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_outputs: Option<ModelOutputs>,
}

/// A lane's final graph outputs against the reference's, under the case's
/// (application) tolerance: "model outputs agree within X". For ORT these
/// are the deployed (untapped) model's outputs, so fusions that exposing
/// every value blocks are judged too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOutputs {
    /// Every compared output is within tolerance, same shape and dtype.
    pub agree: bool,
    /// The values come from the model as deployed (ORT untapped), not from the traced run.
    pub deployed: bool,
    /// Graph outputs compared / total.
    pub compared: usize,
    pub total: usize,
    /// The output with the largest error over its tolerance, with its comparison and tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<WorstOutput>,
}

/// See [`ModelOutputs::worst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstOutput {
    pub output: String,
    pub comparison: Comparison,
    pub tolerance: Tolerance,
}

impl ModelOutputs {
    /// `agree within 3.2e-4 (atol 1e-5, rtol 1e-4)`, or what differs.
    pub fn summary(&self) -> String {
        let Some(w) = &self.worst else {
            return format!("{} of {} compared", self.compared, self.total);
        };
        let tol = format!("atol {:e}, rtol {:e}", w.tolerance.atol, w.tolerance.rtol);
        let source = if self.deployed {
            "; deployed model"
        } else {
            ""
        };
        let partial = if self.compared < self.total {
            format!("; {} of {} outputs compared", self.compared, self.total)
        } else {
            String::new()
        };
        match &w.comparison {
            Comparison::Metrics(m) if self.agree => {
                format!("agree within {:.1e} ({tol}{source}{partial})", m.max_abs)
            }
            Comparison::Metrics(m) => format!(
                "DIFFER: `{}` max abs {:.1e}, {} of {} elements outside ({tol}{source}{partial})",
                w.output, m.max_abs, m.mismatches, m.count
            ),
            Comparison::ShapeMismatch { got, want } => {
                format!("DIFFER: `{}` shape {got:?} vs {want:?}{source}", w.output)
            }
            Comparison::DtypeMismatch { got, want } => {
                format!("DIFFER: `{}` dtype {got} vs {want}{source}", w.output)
            }
        }
    }
}

/// Where a lane starts to differ from the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstDivergence {
    pub index: usize,
    pub node: String,
    pub op: String,
    pub verdict: Verdict,
}

/// Everything about one case variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    pub file: String,
    pub case: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    pub opset: u32,
    pub device: String,
    pub lanes: Vec<LaneInfo>,
    pub nodes: Vec<NodeReport>,
    pub first_divergence: BTreeMap<String, FirstDivergence>,
    /// Why the case fails: undeclared divergences, nodes a lane could not
    /// run, nodes the reference cannot judge, declarations that did not
    /// happen; each starts with `<lane>: `.
    pub failures: Vec<String>,
    /// What a reader should know that does not fail the case (vacuous comparisons).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub passed: bool,
    /// Time spent judging the case once its lanes had run: every total and
    /// local comparison (the reference re-run on each lane's inputs),
    /// fingerprints and the verdict (not stable, like `wall_ms`).
    pub judge_ms: f64,
}

impl CaseReport {
    /// `case` or `case[variant]`: how reports name a case variant.
    pub fn id(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}[{v}]", self.case),
            None => self.case.clone(),
        }
    }
}

/// A backend's output and the reference's value it was compared with.
#[derive(Debug, Clone)]
pub struct TensorPair {
    pub got: Tensor,
    pub want: Tensor,
}

/// The tensors of one lane's first divergence: per diverged output whose
/// comparison has metrics (same shape and dtype), both values.
#[derive(Debug, Clone)]
pub struct NodeEvidence {
    /// The node's index in the graph (= [`FirstDivergence::index`]).
    pub node: usize,
    pub outputs: BTreeMap<String, TensorPair>,
}

/// One introduced divergence, as `--repro` writes it (`crate::repro`): the
/// exact tensors the lane fed the node and the reference's outputs on them.
#[derive(Debug, Clone)]
pub struct ReproEvidence {
    pub lane: String,
    /// The node's index in the graph.
    pub node: usize,
    /// The node's distinct, non-omitted inputs in first-use order, as the
    /// lane received them (its own upstream values in its dtype; graph
    /// inputs and initializers from the case).
    pub inputs: Vec<(String, Tensor)>,
    /// The node's outputs as the float64 reference computes them on
    /// `inputs`, cast to their logical dtype (float32 for a float32 graph);
    /// outputs without a reference value are left out.
    pub outputs: Vec<(String, Tensor)>,
}

/// What a run keeps of its tensors once the report is built: for each lane
/// whose first divergence is a `diverged` node, that node's diverged
/// outputs (one node per lane, so a case keeps at most one node's outputs
/// per lane; everything else is dropped with the traces). Only when asked
/// (`RunOptions::repro`), also the inputs and local reference outputs of
/// every introduced divergence of every lane.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub lanes: BTreeMap<String, NodeEvidence>,
    /// Per introduced divergence (graph order, then lane), with `--repro` only.
    pub repro: Vec<ReproEvidence>,
}

impl Evidence {
    /// The values of `output` of `lane`'s first divergence, if kept.
    pub fn get(&self, lane: &str, output: &str) -> Option<&TensorPair> {
        self.lanes.get(lane)?.outputs.get(output)
    }
}
