//! Running one case: every lane's trace (see [`crate::lane`]), diffed node
//! by node against the reference, verdicts, first-divergence localization,
//! fingerprints and declared divergences, gathered into a [`CaseRun`]: the
//! report (schema in [`crate::outcome`]) and the tensors behind its
//! divergences, so reporters never run an engine again.

use std::collections::{BTreeMap, HashMap};

use crate::backend::reference::RefTensor;
use crate::backend::{self, Device, EngineError, NodeStatus, Trace};
use crate::case::Case;
use crate::diff::{self, Comparison};
use crate::graph::Node;
use crate::lane::{EngineLane, Lane, Patch, EXPECTED, REFERENCE};
use crate::outcome::{
    CaseReport, CaseRun, Evidence, FirstDivergence, LaneInfo, LaneResult, NodeEvidence, NodeReport,
    Origin, OutputInfo, OutputResult, TensorPair, Verdict,
};
use crate::tensor::{DType, Tensor};
use crate::verdict::{self, Judge};

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
        coverage: None,
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
    let show_reference = backends.iter().any(|b| b == REFERENCE);
    // Without the reference nothing can be judged: it is not run, and the
    // case fails saying so (see `verdict::Judge::Absent`).
    let reference = if show_reference {
        run_lane(EngineLane::reference(), case)?
    } else {
        let lane = EngineLane::reference();
        LaneRun::new(lane.clone().into(), None, lane_info(lane.to_string()))
    };
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
                let result = uncompared(compare_lane(case, lane, ref_trace, node), show_reference);
                by_lane.insert(lane.name.clone(), result);
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
    let judge = judge_of(reference, show_reference, case.graph.nodes.len());
    let (failures, warnings) = verdict::judge(case, &judge, &mut nodes, &mut all_lanes);
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
        warnings,
    }
}

/// A node result that compared nothing is not `ok`: it is `skipped`.
fn uncompared(mut r: LaneResult, reference_run: bool) -> LaneResult {
    let compared = r.outputs.values().any(|o| o.comparison.is_some());
    if r.verdict == Verdict::Ok && !compared {
        r.verdict = Verdict::Skipped;
        r.message = Some(if reference_run {
            "nothing compared: the reference has no value for this node".into()
        } else {
            "nothing compared: the reference was not run".into()
        });
    }
    r
}

/// What the reference computed, per node.
fn judge_of(reference: &LaneRun, asked: bool, nodes: usize) -> Judge {
    if !asked {
        return Judge::Absent;
    }
    match &reference.trace {
        None => Judge::Failed(reference.info.error.clone().unwrap_or_default()),
        Some(t) => Judge::Nodes(
            (0..nodes)
                .map(|i| match node_status(t, i) {
                    Some(status) => not_run(status),
                    None => Some((Verdict::Skipped, "no status".into())),
                })
                .collect(),
        ),
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
            let tolerance = dtype.map(|d| case.tolerances.get(&node.op_type, d));
            OutputInfo {
                name: o.clone(),
                shape: v.map(|t| t.shape().to_vec()),
                dtype,
                tolerance,
                vacuous: match (v, tolerance) {
                    (Some(t), Some(tol)) if t.dtype().is_float() => vacuous(t, tol),
                    _ => false,
                },
            }
        })
        .collect()
}

/// Whether every element of the reference's float value `t` is within
/// `tol` of zero, so that a zero (or any as small) lane value agrees: the
/// comparison cannot tell anything.
fn vacuous(t: &Tensor, tol: diff::Tolerance) -> bool {
    let mut all_small = true;
    t.for_each_f64(|x| all_small &= x.abs() <= tol.atol + tol.rtol * x.abs());
    all_small
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

/// Fingerprints every introduced divergence of a lane other than the
/// reference/expected on an op with a fingerprint table.
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
        let mut inputs: Option<Vec<Option<RefTensor>>> = None;
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
            let ins = inputs.get_or_insert_with(|| {
                node.inputs
                    .iter()
                    .map(|n| {
                        if n.is_empty() {
                            None
                        } else {
                            reference_value(case, reference, n)
                        }
                    })
                    .collect()
            });
            if node
                .inputs
                .iter()
                .zip(ins.iter())
                .any(|(n, v)| !n.is_empty() && v.is_none())
            {
                continue;
            }
            let refs: Vec<Option<&RefTensor>> = ins.iter().map(Option::as_ref).collect();
            r.fingerprint = crate::fingerprint::fingerprint(node, case.graph.opset, &refs, k, got)
                .map(|mut fp| {
                    fp.verified =
                        crate::fingerprint::verify(&fp, node, case.graph.opset, &refs, got);
                    fp
                });
        }
    }
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
