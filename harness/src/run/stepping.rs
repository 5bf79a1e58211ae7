//! The stepping judge: the bridge source's lane (ONNX Runtime) judged while
//! the reference runs, so that the parent never holds the reference's whole
//! float64 trace.
//!
//! The parent judges every lane against the reference's values. Judged at
//! the end, a lane needs the reference's value of every node at once, and
//! that trace grows with the graph's depth (swin_t: 133 MB of float64
//! beside ORT's 66 MB of float32). When the bridge source is the only lane
//! to judge (`--backends ort,reference`, no port or patched lane, no
//! cross-device twin, no expected data), it is judged in steps instead:
//! each time the reference has made [`STEP_BYTES`] of values, the nodes it
//! finished are judged (in parallel, as at the end), and every value whose
//! readers are all judged leaves both traces, with the judged nodes' shared
//! bounds. What the report needs of a judged node is taken then: its result
//! (with its fingerprint and `--repro` tensors), the lane's first
//! divergence's tensors, the reference's output shapes and dtypes. Graph
//! outputs stay, for the model-output comparison at the end.
//!
//! ORT's trace comes all at once, when its tapped run ends. A step that
//! finds it not there yet computes the shared bounds of the nodes made so
//! far and then waits for it: the reference never runs more than a step
//! ahead of the judge. On swin_t, where ORT's worker takes longer to load
//! and run the tapped model than the reference takes to run, that costs
//! wall time (1.25–1.40 s without waiting, 1.64–1.80 s with, on a machine
//! where the run took 1.34–1.54 s before) and bounds the memory: all of the
//! run's processes together 402–432 MB without waiting, 274–286 MB with
//! (see docs/performance.md). When more lanes are to be judged, nothing is
//! stepped: they run after the reference and need all of it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::{node_evidence, output_infos, LaneRun, Rules, SourceSlot};
use crate::backend::Trace;
use crate::case::Case;
use crate::outcome::{LaneResult, NodeEvidence, OutputInfo, ReproEvidence, Verdict};

/// How many bytes of values the reference makes between two judging
/// steps: what the parent holds of them beyond the values still to be
/// read. When the source's trace is not there yet at a step, the reference
/// waits for it (see the module's doc).
pub(super) const STEP_BYTES: usize = 16 << 20;

/// One lane judged node by node, with what the report needs of each node.
#[derive(Default)]
pub(super) struct Stepped {
    /// Per node judged so far (graph order): the lane's result.
    pub(super) results: Vec<LaneResult>,
    /// Per node judged so far: the reference's outputs (see [`OutputInfo`]).
    pub(super) infos: Vec<Vec<OutputInfo>>,
    /// The tensors of the lane's first divergence, once its first diverged
    /// or errored node was judged (`Some(None)`: that node errored).
    pub(super) evidence: Option<Option<NodeEvidence>>,
    pub(super) repro: Vec<ReproEvidence>,
}

impl Stepped {
    /// The lane's first divergence's tensors (none when it never diverged).
    pub(super) fn first_evidence(&mut self) -> Option<NodeEvidence> {
        self.evidence.take().flatten()
    }
}

/// Judges the bridge source's lane (from `source`, once it finished) as the
/// reference runs: the reference's bridge calls [`Stepper::finished`] after
/// each node.
pub(super) struct Stepper<'a> {
    rules: &'a Rules<'a>,
    source: &'a SourceSlot,
    /// Per value: the last node that reads it.
    last_read: HashMap<&'a str, usize>,
    outputs: HashSet<&'a str>,
    /// [`STEP_BYTES`] (tests step every node).
    step_bytes: usize,
    state: Mutex<State>,
}

struct State {
    stepped: Stepped,
    /// Bytes of reference values made since the last step.
    made: usize,
    /// How many nodes have their shared bounds computed.
    prefilled: usize,
    spent: Duration,
}

impl<'a> Stepper<'a> {
    pub(super) fn new(rules: &'a Rules<'a>, source: &'a SourceSlot) -> Stepper<'a> {
        let graph = &rules.case.graph;
        Stepper {
            rules,
            source,
            last_read: graph.last_uses(),
            outputs: graph.outputs.iter().map(|o| o.name.as_str()).collect(),
            step_bytes: STEP_BYTES,
            state: Mutex::new(State {
                stepped: Stepped::default(),
                made: 0,
                prefilled: 0,
                spent: Duration::ZERO,
            }),
        }
    }

    /// The reference finished node `index`: once the nodes it finished
    /// since the last step made [`STEP_BYTES`], computes their bounds, waits
    /// for the source's trace and judges them (the last node's step is
    /// [`finish`](Self::finish)'s).
    pub(super) fn finished(&self, index: usize, reference: &mut Trace) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let node = &self.rules.case.graph.nodes[index];
        state.made += node
            .outputs
            .iter()
            .filter_map(|o| reference.values.get(o))
            .map(|t| t.len() * t.dtype().size())
            .sum::<usize>();
        if state.made < self.step_bytes || index + 1 == self.rules.case.graph.nodes.len() {
            // The last node's step is `finish`'s.
            return;
        }
        // The bounds' share of judging first, while the source may still run.
        self.prefill(&mut state, reference, index + 1);
        self.source.with_mut(|source| {
            if let Some(lane) = source {
                self.step(&mut state, lane, reference, index + 1);
            }
        });
    }

    /// Computes the shared bounds of the nodes up to `until` (exclusive).
    fn prefill(&self, state: &mut State, reference: &Trace, until: usize) {
        let start = Instant::now();
        let nodes = &self.rules.case.graph.nodes;
        for node in nodes.get(state.prefilled..until).unwrap_or_default() {
            self.rules
                .bounds
                .prefill_node(self.rules.case, reference, node);
        }
        state.prefilled = state.prefilled.max(until);
        state.spent += start.elapsed();
    }

    /// After the reference ran: judges what is left, waiting for the source.
    pub(super) fn finish(&self, reference: &mut Trace) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let nodes = reference.nodes.len();
        self.prefill(&mut state, reference, nodes);
        self.source.with_mut(|source| {
            if let Some(lane) = source {
                self.step(&mut state, lane, reference, nodes);
            }
        });
    }

    /// What was judged, when every node was (`None`: the lane or the
    /// reference did not run, and the lane is judged at the end).
    pub(super) fn into_stepped(self) -> (Option<Stepped>, Duration) {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let all = state.stepped.results.len() == self.rules.case.graph.nodes.len();
        (all.then_some(state.stepped), state.spent)
    }

    /// Judges nodes up to `until` (exclusive), then drops from both traces
    /// every value whose readers are all judged.
    fn step(&self, state: &mut State, lane: &mut LaneRun, reference: &mut Trace, until: usize) {
        let start = Instant::now();
        let case: &Case = self.rules.case;
        let from = state.stepped.results.len();
        if lane.trace.is_none() || from >= until {
            return;
        }
        let nodes = &case.graph.nodes[from..until];
        // Their shared bounds are there: every caller prefilled them first.
        let judged: Vec<_> = nodes
            .par_iter()
            .map(|node| {
                let (result, repro) = self.rules.node(lane, reference, true, node);
                (result, repro, output_infos(case, reference, node))
            })
            .collect();
        let trace = lane.trace.as_mut().expect("checked above");
        let stepped = &mut state.stepped;
        for (node, (result, repro, infos)) in nodes.iter().zip(judged) {
            let first = matches!(result.verdict, Verdict::Diverged | Verdict::Error);
            if first && stepped.evidence.is_none() {
                stepped.evidence = Some(node_evidence(trace, reference, node.index, &result));
            }
            stepped.results.push(result);
            stepped.repro.extend(repro);
            stepped.infos.push(infos);
        }
        for node in nodes {
            self.rules.bounds.forget(node.index);
            for name in node.inputs.iter().chain(&node.outputs) {
                let read = self.last_read.get(name.as_str());
                if !self.outputs.contains(name.as_str()) && read.is_none_or(|&r| r < until) {
                    reference.values.remove(name);
                    trace.values.remove(name);
                }
            }
        }
        state.made = 0;
        state.spent += start.elapsed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{NodeRun, NodeStatus};
    use crate::lane::EngineLane;
    use crate::options::Device;
    use crate::run::shared_bounds::SharedBounds;
    use crate::run::{first_evidence, lane_info};
    use crate::tensor::{DType, Tensor};

    /// `Y = Sigmoid(Relu(X·W) + X·W)`: the product is read twice, so it must
    /// outlive the step that judged the node after it.
    const CASE: &str = r#"
name = "matmul-relu-add"
seed = 7
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [4, 32] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "W"
shape = [32, 8]
dist = "normal"
[[model.graph.nodes]]
name = "mm"
op = "MatMul"
inputs = ["X", "W"]
outputs = ["M"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["M"]
outputs = ["R"]
[[model.graph.nodes]]
name = "add"
op = "Add"
inputs = ["R", "M"]
outputs = ["Z"]
[[model.graph.nodes]]
name = "sigmoid"
op = "Sigmoid"
inputs = ["Z"]
outputs = ["Y"]
"#;

    fn case() -> (Case, Trace) {
        super::super::case_and_reference(CASE)
    }

    /// ORT's lane as if it returned the reference's values in float32, its
    /// Relu's output 1 % off (an introduced divergence; the Add inherits).
    fn lane(reference: &Trace) -> LaneRun {
        let mut trace = Trace::default();
        for (name, t) in &reference.values {
            let shift = if name == "R" { 1.01 } else { 1.0 };
            let v: Vec<f64> = t.to_f64_vec().iter().map(|v| v * shift).collect();
            let t = Tensor::from_f64(DType::F32, t.shape(), &v);
            trace.values.insert(name.clone(), t);
        }
        let ran = NodeRun {
            status: NodeStatus::Ran,
            lowering: None,
            bridged: None,
        };
        trace.nodes = vec![ran; reference.nodes.len()];
        let engine = EngineLane::backend("ort", Device::Cpu);
        let info = lane_info(engine.to_string());
        LaneRun::new(engine.into(), Some(trace), info)
    }

    fn rules<'a>(case: &'a Case, bounds: &'a SharedBounds, repro: bool) -> Rules<'a> {
        Rules {
            case,
            bounds,
            show_reference: true,
            repro,
        }
    }

    fn names(t: &Trace) -> Vec<&str> {
        let mut n: Vec<&str> = t.values.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("serializable")
    }

    #[test]
    fn stepping_judges_as_judging_at_the_end_and_drops_what_is_judged() {
        let (case, reference) = case();
        let bounds = SharedBounds::new(case.graph.nodes.len());
        let rules = rules(&case, &bounds, true);
        // At the end, on the whole traces.
        let whole = lane(&reference);
        let end: Vec<_> = case
            .graph
            .nodes
            .iter()
            .map(|n| rules.node(&whole, &reference, true, n))
            .collect();
        let end_evidence = first_evidence(
            whole.trace.as_ref().expect("trace"),
            &reference,
            &end.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
        );
        assert_eq!(end[1].0.verdict, Verdict::Diverged, "{:?}", end[1].0);
        assert!(end_evidence.is_some() && end[1].1.is_some());

        // Stepped, every node its own step, the source there from the start.
        let bounds = SharedBounds::new(case.graph.nodes.len());
        let rules = Rules {
            bounds: &bounds,
            ..rules
        };
        let slot = SourceSlot::default();
        slot.set(Some(lane(&reference)));
        let mut stepper = Stepper::new(&rules, &slot);
        stepper.step_bytes = 0;
        let mut running = reference.clone();
        stepper.finished(0, &mut running);
        stepper.finished(1, &mut running);
        // The product is read by the Add still to be judged: it stays.
        assert_eq!(names(&running), ["M", "R", "Y", "Z"]);
        stepper.finished(2, &mut running);
        assert_eq!(names(&running), ["Y", "Z"]);
        stepper.finished(3, &mut running);
        stepper.finish(&mut running);
        // Only the graph's output is left, in both traces.
        assert_eq!(names(&running), ["Y"]);
        slot.with(|l| {
            assert_eq!(
                names(l.and_then(|l| l.trace.as_ref()).expect("trace")),
                ["Y"]
            )
        });
        let (stepped, _) = stepper.into_stepped();
        let mut stepped = stepped.expect("every node judged");
        let results: Vec<_> = end.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(json(&stepped.results), json(&results));
        let repro: Vec<_> = end.iter().filter_map(|(_, r)| r.as_ref()).collect();
        assert_eq!(
            format!("{:?}", stepped.repro),
            format!("{repro:?}").replace('&', "")
        );
        let infos: Vec<_> = case
            .graph
            .nodes
            .iter()
            .map(|n| output_infos(&case, &reference, n))
            .collect();
        assert_eq!(json(&stepped.infos), json(&infos));
        assert_eq!(
            format!("{:?}", stepped.first_evidence()),
            format!("{end_evidence:?}")
        );
    }

    #[test]
    fn a_step_waits_for_the_source_lane() {
        let (case, reference) = case();
        let bounds = SharedBounds::new(case.graph.nodes.len());
        let rules = rules(&case, &bounds, false);
        let slot = SourceSlot::default();
        let mut stepper = Stepper::new(&rules, &slot);
        stepper.step_bytes = 0;
        let mut running = reference.clone();
        let arrived = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                arrived.store(true, std::sync::atomic::Ordering::SeqCst);
                slot.set(Some(lane(&reference)));
            });
            // The product's bound is computed before the wait.
            stepper.finished(0, &mut running);
        });
        assert!(arrived.load(std::sync::atomic::Ordering::SeqCst));
        for i in 1..case.graph.nodes.len() {
            stepper.finished(i, &mut running);
        }
        stepper.finish(&mut running);
        assert_eq!(names(&running), ["Y"]);
        let (stepped, _) = stepper.into_stepped();
        let verdicts: Vec<Verdict> = stepped
            .expect("judged")
            .results
            .iter()
            .map(|r| r.verdict)
            .collect();
        assert_eq!(
            verdicts[..3],
            [Verdict::Ok, Verdict::Diverged, Verdict::Diverged]
        );
    }

    #[test]
    fn a_failed_source_lane_is_left_to_the_end() {
        let (case, reference) = case();
        let bounds = SharedBounds::new(case.graph.nodes.len());
        let rules = rules(&case, &bounds, false);
        let slot = SourceSlot::default();
        slot.set(None);
        let mut stepper = Stepper::new(&rules, &slot);
        stepper.step_bytes = 0;
        let mut running = reference.clone();
        for i in 0..case.graph.nodes.len() {
            stepper.finished(i, &mut running);
        }
        stepper.finish(&mut running);
        assert_eq!(names(&running), ["M", "R", "Y", "Z"]);
        assert!(stepper.into_stepped().0.is_none());
    }
}
