//! Running one case: every lane's trace (see [`crate::lane`]), diffed node
//! by node against the reference, verdicts, first-divergence localization,
//! fingerprints and declared divergences, gathered into a [`CaseRun`]: the
//! report (schema in [`crate::outcome`]) and the tensors behind its
//! divergences, so reporters never run an engine again.

use std::collections::{BTreeMap, HashMap};

use crate::backend::reference::RefTensor;
use crate::backend::{self, Device, EngineError, NodeStatus, Trace};
use crate::case::{Case, Declared};
use crate::diff::{self, Comparison};
use crate::graph::Node;
use crate::lane::{EngineLane, Lane, Patch, EXPECTED, REFERENCE};
use crate::outcome::{
    CaseReport, CaseRun, Evidence, FirstDivergence, LaneInfo, LaneResult, NodeEvidence, NodeReport,
    Origin, OutputInfo, OutputResult, TensorPair, Verdict,
};
use crate::tensor::{DType, Tensor};

/// Failures that are not findings but bad input or environment (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{case}: {error}")]
    Engine { case: String, error: EngineError },
}

struct LaneRun {
    lane: Lane,
    /// `lane` rendered: the key of this lane in the report.
    name: String,
    trace: Option<Trace>,
    info: LaneInfo,
    /// Per node (graph order): this lane compared with the same backend on
    /// another device; empty when there is no cross-device comparison.
    cross_device: Vec<Option<Comparison>>,
}

impl LaneRun {
    fn new(lane: Lane, trace: Option<Trace>, info: LaneInfo) -> LaneRun {
        LaneRun {
            name: info.name.clone(),
            lane,
            trace,
            info,
            cross_device: vec![],
        }
    }
}

fn lane_info(name: String) -> LaneInfo {
    LaneInfo {
        name,
        settings: BTreeMap::new(),
        wall_ms: 0.0,
        notes: vec![],
        error: None,
    }
}

/// Runs an engine lane. A missing runtime or device is an error (exit 2);
/// any other failure of the whole lane is reported in its [`LaneInfo`].
fn run_lane(lane: EngineLane, case: &Case) -> Result<LaneRun, RunError> {
    let fail = |error| RunError::Engine {
        case: case.id(),
        error,
    };
    let engine = backend::engine(&lane.backend).map_err(fail)?;
    let mut info = lane_info(lane.to_string());
    let prepared = engine
        .prepare(&case.graph, &lane.options(&case.options))
        .and_then(|mut s| {
            info.settings = s.settings().into_iter().collect();
            s.run(&case.inputs)
        });
    let trace = match prepared {
        Ok(trace) => {
            info.wall_ms = trace.wall.as_secs_f64() * 1e3;
            info.notes = trace.notes.clone();
            Some(trace)
        }
        Err(e @ (EngineError::Missing { .. } | EngineError::Device { .. })) => return Err(fail(e)),
        Err(e) => {
            info.error = Some(e.to_string());
            None
        }
    };
    Ok(LaneRun::new(lane.into(), trace, info))
}

/// The expected lane of a backend-test directory: outputs only.
fn expected_lane(case: &Case) -> Option<LaneRun> {
    let expected = case.expected.as_ref()?;
    let values: HashMap<String, Tensor> = expected
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let trace = Trace {
        values,
        ..Default::default()
    };
    let lane = Lane::Expected;
    let info = lane_info(lane.to_string());
    Some(LaneRun::new(lane, Some(trace), info))
}

/// The device a case's backends are also run on for the cross-device
/// comparison: the CPU when the case runs on a GPU, unless
/// `options.cross_device = false`.
pub fn cross_device_baseline(case: &Case) -> Option<Device> {
    (case.cross_device && case.options.device != Device::Cpu).then_some(Device::Cpu)
}

/// Runs every lane of `case` and builds its report: the reference, each
/// backend (and, on a GPU, the same backend on the CPU as `<backend>@cpu`,
/// see [`cross_device_baseline`]), an idiomatic-port lane `<backend>:port`
/// per `case.port` entry, and the expected outputs of a backend-test directory.
pub fn run_case(case: &Case, backends: &[String]) -> Result<CaseRun, RunError> {
    run_case_with_baseline(case, backends, cross_device_baseline(case))
}

/// [`run_case`] with an explicit cross-device baseline: with `Some(device)`
/// every backend also runs on `device` as the lane `<backend>@<device>`, and
/// each backend lane's nodes carry `cross_device`, their values compared with
/// that lane's. `Some(Device::Cpu)` on a CPU case compares the CPU with itself
/// (tests run the machinery that way on machines without a GPU).
pub fn run_case_with_baseline(
    case: &Case,
    backends: &[String],
    baseline: Option<Device>,
) -> Result<CaseRun, RunError> {
    let reference = run_lane(EngineLane::reference(), case)?;
    let mut lanes = Vec::new();
    for b in backends.iter().filter(|b| b.as_str() != REFERENCE) {
        // The case's device first: a missing GPU is the error to report.
        let mut lane = run_lane(EngineLane::backend(b, case.options.device), case)?;
        let Some(device) = baseline else {
            lanes.push(lane);
            continue;
        };
        let twin = run_lane(EngineLane::on_device(b, device), case)?;
        lane.cross_device = cross_device_results(case, lane.trace.as_ref(), twin.trace.as_ref());
        lanes.push(lane);
        lanes.push(twin);
    }
    let mut ported: Vec<&String> = Vec::new();
    for b in &case.port {
        if ported.contains(&b) {
            continue;
        }
        ported.push(b);
        let port = EngineLane::patched(b, case.options.device, Patch::Port);
        lanes.push(run_lane(port, case)?);
    }
    lanes.extend(expected_lane(case));
    let show_reference = backends.iter().any(|b| b == REFERENCE);
    let report = build_report(case, &reference, &lanes, show_reference);
    let evidence = evidence(&report, reference.trace.as_ref(), &lanes);
    Ok(CaseRun { report, evidence })
}

/// Runs `backend` on `device` and on `baseline` and compares them node by
/// node: per node (graph order), the `device` values against the `baseline`
/// values under the case's tolerances (see [`LaneResult::cross_device`]);
/// `None` where either side has no value. A lane that fails as a whole gives
/// an empty vector.
pub fn cross_device_compare(
    case: &Case,
    backend: &str,
    device: Device,
    baseline: Device,
) -> Result<Vec<Option<Comparison>>, RunError> {
    let a = run_lane(EngineLane::backend(backend, device), case)?;
    let b = run_lane(EngineLane::on_device(backend, baseline), case)?;
    Ok(cross_device_results(
        case,
        a.trace.as_ref(),
        b.trace.as_ref(),
    ))
}

/// Per node: `got`'s outputs compared with `baseline`'s (the first output
/// outside tolerance, else the first compared output).
fn cross_device_results(
    case: &Case,
    got: Option<&Trace>,
    baseline: Option<&Trace>,
) -> Vec<Option<Comparison>> {
    let (Some(got), Some(baseline)) = (got, baseline) else {
        return vec![];
    };
    case.graph
        .nodes
        .iter()
        .map(|node| {
            let mut first = None;
            for out in node.outputs.iter().filter(|o| !o.is_empty()) {
                let (Some(a), Some(b)) = (got.values.get(out), baseline.values.get(out)) else {
                    continue;
                };
                let tol = case.tolerances.get(&node.op_type, b.dtype());
                let c = diff::compare(a, b, b.dtype(), tol);
                if !c.ok() {
                    return Some(c);
                }
                first.get_or_insert(c);
            }
            first
        })
        .collect()
}

fn node_status(trace: &Trace, i: usize) -> Option<&NodeStatus> {
    trace.nodes.get(i).map(|n| &n.status)
}

/// The verdict and message a node that did not run stands for; `None` when it ran.
fn not_run(status: &NodeStatus) -> Option<(Verdict, String)> {
    match status {
        NodeStatus::Ran => None,
        NodeStatus::Unsupported(m) => Some((Verdict::Unsupported, m.clone())),
        NodeStatus::Error(m) => Some((Verdict::Error, m.clone())),
        NodeStatus::Skipped(m) => Some((Verdict::Skipped, m.clone())),
    }
}

/// One lane's verdict on `node`: its own status, then each output compared
/// with the reference's.
fn compare_lane(case: &Case, lane: &LaneRun, reference: &Trace, node: &Node) -> LaneResult {
    let mut result = LaneResult {
        cross_device: lane.cross_device.get(node.index).cloned().flatten(),
        ..LaneResult::new(Verdict::Ok)
    };
    let Some(trace) = &lane.trace else {
        result.verdict = Verdict::Error;
        result.message = lane.info.error.clone();
        return result;
    };
    let is_expected = lane.lane == Lane::Expected;
    if !is_expected {
        result.lowering = trace.nodes.get(node.index).and_then(|n| n.lowering.clone());
        if let Some((verdict, m)) = node_status(trace, node.index).and_then(not_run) {
            (result.verdict, result.message) = (verdict, Some(m));
            return result;
        }
    }
    if let Some((_, m)) = node_status(reference, node.index).and_then(not_run) {
        result.verdict = Verdict::Skipped;
        result.message = Some(format!("no reference value: {m}"));
        return result;
    }
    let compared = compare_outputs(case, trace, reference, node, is_expected, &mut result);
    if is_expected && compared == 0 {
        result.verdict = Verdict::Skipped;
        result.message = Some("no expected value for this node".into());
    }
    result
}

/// Compares each output of `node` in `trace` with the reference's into
/// `result`; returns how many outputs had a value on both sides. A missing
/// value where the reference has one is an error (not for expected data,
/// which may hold only the graph outputs).
fn compare_outputs(
    case: &Case,
    trace: &Trace,
    reference: &Trace,
    node: &Node,
    is_expected: bool,
    result: &mut LaneResult,
) -> usize {
    let mut compared = 0;
    for out in node.outputs.iter().filter(|o| !o.is_empty()) {
        let (Some(got), Some(want)) = (trace.values.get(out), reference.values.get(out)) else {
            if !is_expected && reference.values.contains_key(out) {
                let missing = OutputResult {
                    verdict: Verdict::Error,
                    comparison: None,
                };
                result.outputs.insert(out.clone(), missing);
                result.verdict = Verdict::Error;
                result.message = Some(format!("no value for output `{out}`"));
            }
            continue;
        };
        compared += 1;
        let dtype = reference.logical.get(out).copied().unwrap_or(want.dtype());
        let tol = case.tolerances.get(&node.op_type, dtype);
        let c = diff::compare(got, want, dtype, tol);
        let verdict = if c.ok() {
            Verdict::Ok
        } else {
            Verdict::Diverged
        };
        result.verdict = result.verdict.max(verdict);
        let compared_output = OutputResult {
            verdict,
            comparison: Some(c),
        };
        result.outputs.insert(out.clone(), compared_output);
    }
    compared
}

fn build_report(
    case: &Case,
    reference: &LaneRun,
    lanes: &[LaneRun],
    show_reference: bool,
) -> CaseReport {
    let empty = Trace::default();
    let ref_trace = reference.trace.as_ref().unwrap_or(&empty);
    let mut nodes: Vec<NodeReport> = case
        .graph
        .nodes
        .iter()
        .map(|node| {
            let mut by_lane = BTreeMap::new();
            if show_reference {
                by_lane.insert(REFERENCE.to_string(), reference_result(reference, node));
            }
            for lane in lanes {
                by_lane.insert(lane.name.clone(), compare_lane(case, lane, ref_trace, node));
            }
            NodeReport {
                index: node.index,
                name: node.name.clone(),
                op: node.op_type.clone(),
                outputs: output_infos(case, ref_trace, node),
                lanes: by_lane,
            }
        })
        .collect();
    localize(case, &mut nodes);
    fingerprint_divergences(case, ref_trace, lanes, &mut nodes);
    let mut all_lanes: Vec<LaneInfo> = Vec::new();
    if show_reference {
        all_lanes.push(reference.info.clone());
    }
    all_lanes.extend(lanes.iter().map(|l| l.info.clone()));
    let failures = apply_expectations(case, &mut nodes, &all_lanes);
    let first_divergence = first_divergences(&nodes, &all_lanes);
    CaseReport {
        file: case.file.display().to_string(),
        case: case.name.clone(),
        variant: case.variant.clone(),
        params: case
            .params
            .iter()
            .map(|(k, v)| (k.clone(), crate::case::show_value(v)))
            .collect(),
        opset: case.graph.opset,
        device: case.options.device.to_string(),
        passed: failures.is_empty(),
        lanes: all_lanes,
        nodes,
        first_divergence,
        failures,
    }
}

/// Shape, dtype and tolerance of each output of `node`, as the reference computed it.
fn output_infos(case: &Case, reference: &Trace, node: &Node) -> Vec<OutputInfo> {
    node.outputs
        .iter()
        .filter(|o| !o.is_empty())
        .map(|o| {
            let v = reference.values.get(o);
            let dtype = reference.logical.get(o).copied().or(v.map(Tensor::dtype));
            OutputInfo {
                name: o.clone(),
                shape: v.map(|t| t.shape().to_vec()),
                dtype,
                tolerance: dtype.map(|d| case.tolerances.get(&node.op_type, d)),
            }
        })
        .collect()
}

/// The tensors behind each lane's first divergence, kept from this run's
/// traces (see [`Evidence`]): the diverged outputs with metrics (same shape
/// and dtype) of a first divergence whose verdict is `diverged`.
fn evidence(report: &CaseReport, reference: Option<&Trace>, lanes: &[LaneRun]) -> Evidence {
    let mut out = Evidence::default();
    let Some(reference) = reference else {
        return out;
    };
    for lane in lanes {
        let (Some(fd), Some(trace)) = (report.first_divergence.get(&lane.name), &lane.trace) else {
            continue;
        };
        let Some(result) = report
            .nodes
            .get(fd.index)
            .and_then(|n| n.lanes.get(&lane.name))
        else {
            continue;
        };
        if fd.verdict != Verdict::Diverged {
            continue;
        }
        let outputs = result
            .outputs
            .iter()
            .filter(|(_, r)| {
                r.verdict == Verdict::Diverged
                    && matches!(r.comparison, Some(Comparison::Metrics(_)))
            })
            .filter_map(|(name, _)| {
                let pair = TensorPair {
                    got: trace.values.get(name)?.clone(),
                    want: reference.values.get(name)?.clone(),
                };
                Some((name.clone(), pair))
            })
            .collect();
        let node = NodeEvidence {
            node: fd.index,
            outputs,
        };
        out.lanes.insert(lane.name.clone(), node);
    }
    out
}

/// The reference lane's own result on `node` (shown with `--backends ...,reference`).
fn reference_result(reference: &LaneRun, node: &Node) -> LaneResult {
    let mut r = LaneResult {
        lowering: Some("spec".into()),
        ..LaneResult::new(Verdict::Ok)
    };
    match reference
        .trace
        .as_ref()
        .and_then(|t| node_status(t, node.index))
    {
        Some(status) => {
            if let Some((verdict, m)) = not_run(status) {
                (r.verdict, r.message) = (verdict, Some(m));
            }
        }
        None => (r.verdict, r.message) = (Verdict::Error, reference.info.error.clone()),
    }
    r
}

/// Marks each diverged node as introducing the divergence (all inputs
/// produced by other nodes agreed) or inheriting it.
fn localize(case: &Case, nodes: &mut [NodeReport]) {
    let producer: HashMap<&str, usize> = case
        .graph
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n.index)))
        .collect();
    for i in 0..nodes.len() {
        let lanes: Vec<String> = nodes[i].lanes.keys().cloned().collect();
        for lane in lanes {
            if nodes[i].lanes[&lane].verdict != Verdict::Diverged {
                continue;
            }
            let inherited = case.graph.nodes[i]
                .inputs
                .iter()
                .filter_map(|inp| producer.get(inp.as_str()))
                .any(|&p| {
                    nodes[p]
                        .lanes
                        .get(&lane)
                        .is_some_and(|r| r.verdict != Verdict::Ok)
                });
            let origin = if inherited {
                Origin::Inherited
            } else {
                Origin::Introduced
            };
            nodes[i].lanes.get_mut(&lane).expect("lane").origin = Some(origin);
        }
    }
}

/// The reference's value of `name` (its logical dtype kept), or the case's
/// input / initializer.
fn reference_value(case: &Case, reference: &Trace, name: &str) -> Option<RefTensor> {
    if let Some(t) = reference.values.get(name) {
        let mut r = RefTensor::from_host(t);
        if let Some(&d) = reference.logical.get(name) {
            if d.is_float() && r.data.dtype() == DType::F64 {
                r.dtype = d;
            }
        }
        return Some(r);
    }
    case.inputs
        .get(name)
        .or_else(|| case.graph.initializers.get(name))
        .map(RefTensor::from_host)
}

/// The values `trace`'s lane fed `node` (its own outputs upstream, upcast;
/// graph inputs and initializers from the case); `None` when one is missing.
fn lane_inputs(case: &Case, trace: &Trace, node: &Node) -> Option<Vec<Option<RefTensor>>> {
    node.inputs
        .iter()
        .map(|n| {
            if n.is_empty() {
                return Some(None);
            }
            let t = trace
                .values
                .get(n)
                .or_else(|| case.inputs.get(n))
                .or_else(|| case.graph.initializers.get(n))?;
            Some(Some(RefTensor::from_host(t)))
        })
        .collect()
}

/// The reference's values of `node`'s inputs; `None` when one is missing.
fn reference_inputs(case: &Case, reference: &Trace, node: &Node) -> Option<Vec<Option<RefTensor>>> {
    node.inputs
        .iter()
        .map(|n| {
            if n.is_empty() {
                Some(None)
            } else {
                reference_value(case, reference, n).map(Some)
            }
        })
        .collect()
}

/// Fingerprints every introduced divergence of a lane other than the
/// reference/expected on an op with a fingerprint table: searched on the
/// reference's inputs, verified on the lane's own (`fingerprint::verify`).
fn fingerprint_divergences(
    case: &Case,
    reference: &Trace,
    lanes: &[LaneRun],
    nodes: &mut [NodeReport],
) {
    for (i, report) in nodes.iter_mut().enumerate() {
        if !crate::fingerprint::supports(&report.op) {
            continue;
        }
        let node = &case.graph.nodes[i];
        let mut inputs: Option<Option<Vec<Option<RefTensor>>>> = None;
        for (lane, r) in report.lanes.iter_mut() {
            if lane == REFERENCE
                || lane == EXPECTED
                || r.verdict != Verdict::Diverged
                || r.origin != Some(Origin::Introduced)
            {
                continue;
            }
            let Some(trace) = lanes
                .iter()
                .find(|l| &l.name == lane)
                .and_then(|l| l.trace.as_ref())
            else {
                continue;
            };
            let Some((k, got)) = node.outputs.iter().enumerate().find_map(|(k, o)| {
                let diverged = r
                    .outputs
                    .get(o)
                    .is_some_and(|x| x.verdict == Verdict::Diverged);
                trace.values.get(o).filter(|_| diverged).map(|t| (k, t))
            }) else {
                continue;
            };
            let Some(ins) = inputs
                .get_or_insert_with(|| reference_inputs(case, reference, node))
                .as_ref()
            else {
                continue;
            };
            let refs: Vec<Option<&RefTensor>> = ins.iter().map(Option::as_ref).collect();
            let opset = case.graph.opset;
            r.fingerprint =
                crate::fingerprint::fingerprint(node, opset, &refs, k, got).map(|mut fp| {
                    let own = lane_inputs(case, trace, node);
                    let own: Vec<Option<&RefTensor>> =
                        own.iter().flatten().map(Option::as_ref).collect();
                    let ok = own.len() == node.inputs.len()
                        && crate::fingerprint::verify(&fp, node, opset, &own, got);
                    crate::fingerprint::mark_verified(&mut fp, ok);
                    fp
                });
        }
    }
}

fn declared_matches(d: Declared, v: Verdict) -> bool {
    matches!(
        (d, v),
        (Declared::Diverged, Verdict::Diverged)
            | (Declared::Unsupported, Verdict::Unsupported)
            | (Declared::Error, Verdict::Error)
    )
}

/// Applies declared divergences (strictly) and collects failures.
fn apply_expectations(case: &Case, nodes: &mut [NodeReport], lanes: &[LaneInfo]) -> Vec<String> {
    let mut failures = Vec::new();
    for lane in lanes {
        if let Some(e) = &lane.error {
            if !case
                .expects
                .iter()
                .any(|x| x.backend == lane.name && x.verdict == Declared::Error)
            {
                failures.push(format!("{}: lane failed: {e}", lane.name));
            }
        }
    }
    for node in nodes.iter_mut() {
        for (lane, r) in node.lanes.iter_mut() {
            let exp = case
                .expects
                .iter()
                .find(|e| e.applies(lane, &node.name, &node.op, &case.params));
            match exp {
                Some(e) if declared_matches(e.verdict, r.verdict) => {
                    r.declared = Some(e.reason.clone())
                }
                Some(e) => failures.push(format!(
                    "{lane}: node `{}` ({}) was declared {:?} ({}) but is {}",
                    node.name,
                    node.op,
                    e.verdict,
                    e.reason,
                    r.verdict.name()
                )),
                None if matches!(r.verdict, Verdict::Diverged | Verdict::Error) => {
                    let what = r
                        .message
                        .clone()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    if r.origin != Some(Origin::Inherited) {
                        failures.push(format!(
                            "{lane}: node `{}` ({}) {}{what}",
                            node.name,
                            node.op,
                            r.verdict.name()
                        ));
                    }
                }
                None => {}
            }
        }
    }
    failures
}

fn first_divergences(
    nodes: &[NodeReport],
    lanes: &[LaneInfo],
) -> BTreeMap<String, FirstDivergence> {
    let mut out = BTreeMap::new();
    for lane in lanes {
        if let Some(n) = nodes.iter().find(|n| {
            n.lanes
                .get(&lane.name)
                .is_some_and(|r| matches!(r.verdict, Verdict::Diverged | Verdict::Error))
        }) {
            let verdict = n.lanes[&lane.name].verdict;
            out.insert(
                lane.name.clone(),
                FirstDivergence {
                    index: n.index,
                    node: n.name.clone(),
                    op: n.op.clone(),
                    verdict,
                },
            );
        }
    }
    out
}
