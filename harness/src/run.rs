//! Running one case: every lane's trace (see [`crate::lane`]), diffed node
//! by node against the reference (the total comparison, under the case
//! tolerance) and against the reference evaluated on the lane's own inputs
//! (the local comparison, under the op's error bound, `diff::bound`): a
//! node past its bound introduced a divergence, any other difference is
//! inherited. Verdicts, first-divergence localization,
//! fingerprints and declared divergences, gathered into a [`CaseRun`]: the
//! report (schema in [`crate::outcome`]) and the tensors behind its
//! divergences, so reporters never run an engine again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::backend::engine::{Bridge, NoBridge};
use crate::backend::reference;
use crate::backend::reference::RefTensor;
use crate::backend::{self, Device, EngineError, NodeStatus, Trace};
use crate::case::Case;
use crate::diff::{self, bound, Comparison};
use crate::graph::Node;
use crate::isolate::{self, Isolation};
use crate::lane::{EngineLane, Lane, Patch, REFERENCE};
use crate::outcome::{
    CaseReport, CaseRun, Evidence, FirstDivergence, LaneInfo, LaneResult, ModelOutputs,
    NodeEvidence, NodeReport, Origin, OutputInfo, OutputResult, ReproEvidence, TensorPair, Verdict,
    WorstOutput,
};
use crate::tensor::{DType, Tensor};
use crate::verdict::{self, Judge};
use rayon::prelude::*;
use shared_bounds::SharedBounds;
use stepping::{Stepped, Stepper};

mod shared_bounds;
mod stepping;

/// The lane that runs first and bridges the nodes the reference cannot run.
const BRIDGE_SOURCE: &str = "ort";

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
    /// The deployed outputs its worker still has to send (see [`run_lane`]).
    pending: Option<isolate::Pending>,
}

impl LaneRun {
    fn new(lane: Lane, trace: Option<Trace>, info: LaneInfo) -> LaneRun {
        LaneRun {
            name: info.name.clone(),
            lane,
            trace,
            info,
            cross_device: vec![],
            pending: None,
        }
    }

    /// Takes in the deployed outputs still to come, if any: into the trace
    /// and its notes, or, when the worker failed meanwhile, the lane's error.
    fn settle(&mut self, case: &Case) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match (pending.settle(), &mut self.trace) {
            (Ok(Some(deployed)), Some(trace)) => {
                trace.settle(deployed);
                self.info.notes = lane_notes(case, trace);
            }
            (Ok(_), _) => {}
            (Err(e), _) => {
                self.trace = None;
                self.info.error = Some(e.to_string());
            }
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
        model_outputs: None,
    }
}

/// Runs an engine lane, bridging the nodes it cannot run with `bridge`'s
/// values: in this process, or with `iso` (and not the reference, which the
/// parent keeps: it judges every lane) in a lane worker (`crate::isolate`),
/// where a crash or timeout is the lane's error. A missing runtime or device
/// is an error (exit 2); any other failure of the whole lane is reported in
/// its [`LaneInfo`]. The model's outputs as deployed (ORT's untapped model,
/// `Session::deployed`) come after the trace: with `later`, a worker's are
/// left pending ([`LaneRun::settle`]), so that the lanes waiting for this
/// one's values start while its worker runs the deployed model.
fn run_lane(
    lane: EngineLane,
    case: &Case,
    bridge: &dyn Bridge,
    iso: Option<&Isolation>,
    later: bool,
) -> Result<LaneRun, RunError> {
    let fail = |error| RunError::Engine {
        case: case.id(),
        error,
    };
    let mut info = lane_info(lane.to_string());
    let opts = lane.options(&case.options);
    let iso = match lane.backend.as_str() {
        REFERENCE => None,
        b => isolate::for_backend(iso, b).map_err(fail)?,
    };
    let mut pending = None;
    let (mode, prepared) = match &iso {
        Some(iso) => {
            let engine = backend::info(&lane.backend).map_or("xdiff", |b| b.name);
            let job = isolate::Job {
                lane: &info.name,
                backend: &lane.backend,
                opts: &opts,
                graph: &case.graph,
                inputs: &case.inputs,
            };
            let reply = isolate::run(iso, &job, engine, bridge, later);
            info.settings = reply.settings.into_iter().collect();
            pending = reply.pending;
            ("lane", reply.trace)
        }
        None => {
            let engine = backend::engine(&lane.backend).map_err(fail)?;
            let trace = engine.prepare(&case.graph, &opts).and_then(|mut s| {
                info.settings = s.settings().into_iter().collect();
                s.run_settled(&case.inputs, bridge)
            });
            ("none", trace)
        }
    };
    info.settings.insert("isolation".into(), mode.into());
    let trace = match prepared {
        Ok(trace) => {
            info.wall_ms = trace.wall.as_secs_f64() * 1e3;
            info.notes = lane_notes(case, &trace);
            Some(trace)
        }
        Err(e @ (EngineError::Missing { .. } | EngineError::Device { .. })) => return Err(fail(e)),
        Err(e) => {
            info.error = Some(e.to_string());
            None
        }
    };
    let mut run = LaneRun::new(lane.into(), trace, info);
    run.pending = pending;
    Ok(run)
}

/// A lane's notes: its trace's, then which nodes it bridged.
fn lane_notes(case: &Case, trace: &Trace) -> Vec<String> {
    let mut notes = trace.notes.clone();
    notes.extend(bridged_note(case, trace));
    notes
}

/// "bridged N nodes ... with values from `x`": the nodes this lane could
/// not run whose outputs another lane supplied, so that the nodes after
/// them still ran and were judged on their own inputs.
fn bridged_note(case: &Case, trace: &Trace) -> Option<String> {
    let mut by_source: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (node, run) in case.graph.nodes.iter().zip(&trace.nodes) {
        if let Some(from) = &run.bridged {
            by_source.entry(from).or_default().push(&node.name);
        }
    }
    let parts: Vec<String> = by_source
        .iter()
        .map(|(from, names)| {
            let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
            let more = names.len().saturating_sub(8);
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            format!(
                "{} node{} it could not run took {} outputs from `{from}` so the nodes after them still ran: {}{more}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if names.len() == 1 { "its" } else { "their" },
                shown.join(", ")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| format!("bridged: {}", parts.join("; ")))
}

/// Values of lanes already run, offered to a later lane for the nodes it
/// cannot run ([`Bridge`]): the first source with the value wins, cast to
/// its ONNX dtype (the reference stores floats as f64).
struct TraceBridge<'a> {
    sources: Vec<(&'a str, &'a Trace)>,
}

impl Bridge for TraceBridge<'_> {
    fn value(&self, name: &str) -> Option<(Tensor, String)> {
        self.sources.iter().find_map(|(lane, t)| {
            let v = t.values.get(name)?;
            let v = match t.logical.get(name) {
                Some(&d) if d != v.dtype() => v.cast(d),
                _ => v.clone(),
            };
            Some((v, lane.to_string()))
        })
    }
}

impl<'a> TraceBridge<'a> {
    fn of(runs: &[&'a LaneRun]) -> TraceBridge<'a> {
        let sources = runs
            .iter()
            .filter_map(|r| Some((r.name.as_str(), r.trace.as_ref()?)))
            .collect();
        TraceBridge { sources }
    }
}

/// The expected lane of a backend-test directory: outputs only.
fn expected_lane(case: &Case) -> Option<LaneRun> {
    let expected = case.expected.as_ref()?;
    let mut values: HashMap<String, Tensor> = expected
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    identity_aliases(case, &mut values);
    let trace = Trace {
        values,
        ..Default::default()
    };
    let lane = Lane::Expected;
    let info = lane_info(lane.to_string());
    Some(LaneRun::new(lane, Some(trace), info))
}

/// Gives the input of every `Identity` whose output has an expected value
/// that value too (Identity is exact: its output *is* its input), back
/// through chains of them. Backend-test directories hold graph outputs only,
/// and expanded function tests expose intermediates as `Identity` copies:
/// with the intermediate known, the node consuming it is judged on its own
/// inputs (its local error) instead of end to end.
fn identity_aliases(case: &Case, values: &mut HashMap<String, Tensor>) {
    let given = |n: &str| case.inputs.contains_key(n) || case.graph.initializers.contains_key(n);
    for node in case.graph.nodes.iter().rev() {
        let (Some(input), Some(output)) = (node.inputs.first(), node.outputs.first()) else {
            continue;
        };
        if node.op_type != "Identity"
            || input.is_empty()
            || given(input)
            || values.contains_key(input)
        {
            continue;
        }
        if let Some(v) = values.get(output).cloned() {
            values.insert(input.clone(), v);
        }
    }
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
/// per `case.port` entry, a patched lane `<backend>:<name>` per `[[lane]]`
/// (`case.lanes`), and the expected outputs of a backend-test directory.
pub fn run_case(case: &Case, backends: &[String]) -> Result<CaseRun, RunError> {
    run_case_with(case, backends, RunOptions::for_case(case))
}

/// How [`run_case_with`] runs a case beyond its lanes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// See [`run_case_with_baseline`].
    pub baseline: Option<Device>,
    /// Keep, in [`Evidence::repro`], the tensors of every introduced
    /// divergence for `--repro` (off by default: they are dropped with the traces).
    pub repro: bool,
    /// Run each engine lane in a worker process (`--isolation lane`); `None`
    /// runs every lane in this process.
    pub isolation: Option<Isolation>,
}

impl RunOptions {
    /// The case's own cross-device baseline, no repro evidence.
    pub fn for_case(case: &Case) -> RunOptions {
        RunOptions {
            baseline: cross_device_baseline(case),
            repro: false,
            isolation: None,
        }
    }
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
    let opts = RunOptions {
        baseline,
        repro: false,
        isolation: None,
    };
    run_case_with(case, backends, opts)
}

/// [`run_case`] under `opts`.
pub fn run_case_with(
    case: &Case,
    backends: &[String],
    opts: RunOptions,
) -> Result<CaseRun, RunError> {
    let baseline = opts.baseline;
    let iso = opts.isolation.as_ref();
    let show_reference = backends.iter().any(|b| b == REFERENCE);
    let bounds = SharedBounds::new(case.graph.nodes.len());
    // Bounds are worth computing early only for lanes that will be judged.
    let others = backends.iter().any(|b| b.as_str() != REFERENCE)
        || !case.port.is_empty()
        || !case.lanes.is_empty();
    let rules = Rules {
        case,
        bounds: &bounds,
        show_reference,
        repro: opts.repro,
    };
    // Every other lane at once (see [`LaneJob`]), each judged as soon as it
    // (and its cross-device twin) ran and its trace dropped: only the
    // reference's and the bridge source's values stay for the lanes still
    // to run. Reported in this order whatever order they finish in.
    let mut jobs: Vec<LaneJob> = backends
        .iter()
        .filter(|b| b.as_str() != REFERENCE)
        .map(LaneJob::Backend)
        .collect();
    let mut ported: Vec<&String> = Vec::new();
    for b in &case.port {
        if !ported.contains(&b) {
            ported.push(b);
            jobs.push(LaneJob::Port(b));
        }
    }
    jobs.extend(case.lanes.iter().map(LaneJob::Patched));
    // The bridge source alone to judge: judged as the reference runs.
    let alone = jobs
        .iter()
        .all(|j| matches!(j, LaneJob::Backend(b) if b.as_str() == BRIDGE_SOURCE));
    let steps = show_reference && alone && baseline.is_none() && case.expected.is_none();
    let start = RunStart {
        show_reference,
        prefill: others.then_some(&bounds),
        steps: steps.then_some(&rules),
    };
    let (first, reference, (mut stepped, stepped_for)) =
        run_source_and_reference(case, backends, iso, start)?;
    let sources: Vec<&LaneRun> = std::iter::once(&reference).chain(&first).collect();
    let bridge = TraceBridge::of(&sources);
    let empty = Trace::default();
    let judging = Judging {
        rules: &rules,
        reference: reference.trace.as_ref().unwrap_or(&empty),
        has_reference: reference.trace.is_some(),
        spent: Mutex::new(stepped_for),
    };
    let ctx = JobContext {
        case,
        first: first.as_ref(),
        bridge: &bridge,
        iso,
        baseline,
        judging: &judging,
    };
    // The bridge source's nodes are judged beside the other lanes (not
    // after them) when the reference did not judge them as it ran.
    let source_job = ctx.first.is_some() && stepped.is_none() && !jobs.is_empty();
    if source_job {
        jobs.push(LaneJob::Source);
    }
    let done = run_concurrently(&jobs, case.options.cpu_threads(), |job| ctx.run(job));
    let mut lanes = Vec::new();
    // Where the lane run first goes, and its cross-device comparison.
    let mut first_at = None;
    let mut source = None;
    for finished in done {
        let finished = finished?;
        if let Some(cross) = finished.first_cross {
            first_at = Some((lanes.len(), cross));
        }
        source = source.or(finished.source);
        lanes.extend(finished.lanes);
    }
    drop(bridge);
    let mut infos = None;
    if let (Some(mut l), Some((at, cross))) = (first, first_at) {
        l.cross_device = cross;
        if let Some(s) = &mut stepped {
            infos = Some(std::mem::take(&mut s.infos));
        }
        lanes.insert(at, judging.judge_with(l, stepped.take().or(source)));
    }
    lanes.extend(expected_lane(case).map(|l| judging.judge(l)));
    let assembling = std::time::Instant::now();
    let (mut report, evidence) = build_report(case, &reference, lanes, show_reference, infos);
    let spent = judging
        .spent
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    report.judge_ms = (spent + assembling.elapsed()).as_secs_f64() * 1e3;
    Ok(CaseRun { report, evidence })
}

/// A lane to run after the reference and the bridge source: a backend (with
/// its cross-device twin), an idiomatic-port lane, or a `[[lane]]` patch.
enum LaneJob<'a> {
    Backend(&'a String),
    Port(&'a String),
    Patched(&'a crate::case::PatchedLane),
    /// The bridge source's nodes judged while the other lanes run (its
    /// values stay their bridge; the lane itself is judged last, from this).
    Source,
}

/// What every [`LaneJob`] shares.
struct JobContext<'a> {
    case: &'a Case,
    /// The bridge source's lane, already run (its cross-device twin is its job's).
    first: Option<&'a LaneRun>,
    bridge: &'a TraceBridge<'a>,
    iso: Option<&'a Isolation>,
    baseline: Option<Device>,
    judging: &'a Judging<'a>,
}

/// A [`LaneJob`]'s judged lanes, in report order; for the bridge source's
/// job, its cross-device comparison (the lane itself is judged last, its
/// values being the other lanes' bridge until then).
struct FinishedJob {
    lanes: Vec<JudgedLane>,
    first_cross: Option<Vec<Option<Comparison>>>,
    /// [`LaneJob::Source`]'s judgement of the bridge source's nodes.
    source: Option<Stepped>,
}

impl JobContext<'_> {
    fn run(&self, job: &LaneJob) -> Result<FinishedJob, RunError> {
        let (case, bridge, iso) = (self.case, self.bridge, self.iso);
        let judged = |lane| FinishedJob {
            lanes: vec![self.judging.judge(lane)],
            first_cross: None,
            source: None,
        };
        match job {
            LaneJob::Backend(b) => self.backend(b),
            LaneJob::Source => {
                let start = std::time::Instant::now();
                let source = self.first.map(|l| self.judging.judge_nodes(l));
                if let Ok(mut spent) = self.judging.spent.lock() {
                    *spent += start.elapsed();
                }
                Ok(FinishedJob {
                    lanes: vec![],
                    first_cross: None,
                    source,
                })
            }
            LaneJob::Port(b) => {
                let port = EngineLane::patched(b, case.options.device, Patch::Port);
                Ok(judged(run_lane(port, case, bridge, iso, false)?))
            }
            // The engine runs the patched graph; the reference (and so
            // every comparison) keeps the case's own.
            LaneJob::Patched(p) => {
                let patched = case.with_graph(p.graph.clone());
                let mut lane = run_lane(p.lane(case.options.device), &patched, bridge, iso, false)?;
                let patch = format!("node {}: {}", p.node, p.change);
                lane.info.settings.insert("patch".into(), patch);
                Ok(judged(lane))
            }
        }
    }

    /// Backend `b` on the case's device (unless it is the bridge source,
    /// run already) and on the cross-device baseline.
    fn backend(&self, b: &str) -> Result<FinishedJob, RunError> {
        let (case, bridge, iso) = (self.case, self.bridge, self.iso);
        let ran_first = self.first.filter(|l| l.name == b);
        // The case's device first: a missing GPU is the error to report.
        let mut lane = match ran_first {
            Some(_) => None,
            None => Some(run_lane(
                EngineLane::backend(b, case.options.device),
                case,
                bridge,
                iso,
                false,
            )?),
        };
        let twin = match self.baseline {
            Some(device) => Some(run_lane(
                EngineLane::on_device(b, device),
                case,
                bridge,
                iso,
                false,
            )?),
            None => None,
        };
        let mut first_cross = ran_first.map(|_| vec![]);
        if let Some(twin) = &twin {
            let got = ran_first.or(lane.as_ref()).and_then(|l| l.trace.as_ref());
            let cross = cross_device_results(case, got, twin.trace.as_ref());
            match &mut lane {
                Some(l) => l.cross_device = cross,
                None => first_cross = Some(cross),
            }
        }
        let lanes = lane.into_iter().chain(twin).map(|l| self.judging.judge(l));
        Ok(FinishedJob {
            lanes: lanes.collect(),
            first_cross,
            source: None,
        })
    }
}

/// `f` over `jobs` on up to `threads` threads (at least two, so that lanes
/// that wait on their workers overlap): this one and scoped ones, results
/// in `jobs`' order. This thread takes jobs too: a thread fewer to start
/// and end per case (a sweep runs hundreds of cases).
fn run_concurrently<J: Sync, R: Send>(
    jobs: &[J],
    threads: usize,
    f: impl Fn(&J) -> R + Sync,
) -> Vec<R> {
    let threads = threads.max(2).min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let take_jobs = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        let r = f(job);
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(take_jobs);
        }
        take_jobs();
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every job ran")
        })
        .collect()
}

/// The bridge source (ONNX Runtime, when asked for) and the reference, at
/// the same time: ORT runs every op, so the reference takes from it the
/// outputs of a node it has no lowering for (that node alone cannot be
/// judged, not everything after it), and waits for ORT only when it needs
/// such a value ([`WaitBridge`]). ORT runs on this thread (its untapped
/// session is kept per thread, `graph_runtime::Untapped`), the reference on
/// a scoped one. Without the reference nothing can be judged: it is not
/// run, and the case fails saying so (see `verdict::Judge::Absent`). An
/// error of ORT's lane is reported before the reference's, as when they
/// ran one after the other. With `start.steps`, the source's lane is
/// judged as the reference runs ([`Stepper`]); else, with `start.prefill`,
/// the reference's thread then computes the shared bounds while the other
/// lanes run ([`SharedBounds::prefill`]).
fn run_source_and_reference(
    case: &Case,
    backends: &[String],
    iso: Option<&Isolation>,
    start: RunStart,
) -> Result<(Option<LaneRun>, LaneRun, StepsTaken), RunError> {
    let show_reference = start.show_reference;
    let source = backends.iter().find(|b| b.as_str() == BRIDGE_SOURCE);
    let slot = SourceSlot::default();
    let stepper = start
        .steps
        .filter(|_| source.is_some())
        .map(|rules| Stepper::new(rules, &slot));
    let (source_error, reference) = std::thread::scope(|s| {
        let reference = show_reference.then(|| {
            let bridge = WaitBridge {
                slot: &slot,
                waits: source.is_some(),
                stepper: stepper.as_ref(),
            };
            let (stepper, prefill) = (stepper.as_ref(), start.prefill);
            s.spawn(move || {
                let mut ran = run_lane(EngineLane::reference(), case, &bridge, iso, false);
                let trace = ran.as_mut().ok().and_then(|l| l.trace.as_mut());
                match (stepper, prefill, trace) {
                    (Some(stepper), _, Some(trace)) => stepper.finish(trace),
                    (None, Some(bounds), Some(trace)) => bounds.prefill(case, trace),
                    _ => {}
                }
                ran
            })
        });
        let set = SetOnDrop(&slot);
        let ran = source
            .map(|b| {
                // Judged last (its values are the others' bridge): its
                // deployed outputs are waited for then.
                run_lane(
                    EngineLane::backend(b, case.options.device),
                    case,
                    &NoBridge,
                    iso,
                    true,
                )
            })
            .transpose();
        let (lane, error) = match ran {
            Ok(lane) => (lane, None),
            Err(e) => (None, Some(e)),
        };
        slot.set(lane);
        drop(set);
        let reference =
            reference.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (error, reference)
    });
    if let Some(e) = source_error {
        return Err(e);
    }
    let reference = match reference {
        Some(r) => r?,
        None => {
            let lane = EngineLane::reference();
            LaneRun::new(lane.clone().into(), None, lane_info(lane.to_string()))
        }
    };
    let steps = stepper.map_or((None, std::time::Duration::ZERO), Stepper::into_stepped);
    Ok((slot.take(), reference, steps))
}

/// What the reference's thread does besides running it (see
/// [`run_source_and_reference`]).
struct RunStart<'a> {
    show_reference: bool,
    prefill: Option<&'a SharedBounds>,
    steps: Option<&'a Rules<'a>>,
}

/// The source's lane judged as the reference ran (when every node was)
/// and the time that took.
type StepsTaken = (Option<Stepped>, std::time::Duration);

/// The bridge source's lane once it finished (`Some(None)`: it failed).
#[derive(Default)]
struct SourceSlot {
    done: Mutex<Option<Option<LaneRun>>>,
    ready: std::sync::Condvar,
}

impl SourceSlot {
    /// The first call wins (a panic's [`SetOnDrop`] comes after).
    fn set(&self, lane: Option<LaneRun>) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        if done.is_none() {
            *done = Some(lane);
        }
        self.ready.notify_all();
    }

    /// `f` on the finished lane, waiting for it.
    fn with<R>(&self, f: impl FnOnce(Option<&LaneRun>) -> R) -> R {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while done.is_none() {
            done = self.ready.wait(done).unwrap_or_else(|p| p.into_inner());
        }
        f(done.as_ref().and_then(Option::as_ref))
    }

    /// `f` on the lane, waiting for it to finish.
    fn with_mut<R>(&self, f: impl FnOnce(Option<&mut LaneRun>) -> R) -> R {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while done.is_none() {
            done = self.ready.wait(done).unwrap_or_else(|p| p.into_inner());
        }
        f(done.as_mut().and_then(Option::as_mut))
    }

    fn take(self) -> Option<LaneRun> {
        self.done
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .flatten()
    }
}

/// The reference's bridge while the source lane may still be running: the
/// first value asked for waits until it finished (none if it failed).
struct WaitBridge<'a> {
    slot: &'a SourceSlot,
    /// Whether there is a source lane at all (else never wait).
    waits: bool,
    /// Judges the source's lane as the reference runs.
    stepper: Option<&'a Stepper<'a>>,
}

impl Bridge for WaitBridge<'_> {
    fn value(&self, name: &str) -> Option<(Tensor, String)> {
        if !self.waits {
            return None;
        }
        self.slot
            .with(|source| TraceBridge::of(&source.into_iter().collect::<Vec<_>>()).value(name))
    }

    fn finished(&self, index: usize, trace: &mut Trace) {
        if let Some(stepper) = self.stepper {
            stepper.finished(index, trace);
        }
    }
}

/// Marks the source lane finished even if running it panicked, so that the
/// reference's thread, waiting for it, ends and the panic propagates.
struct SetOnDrop<'a>(&'a SourceSlot);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// How nodes are judged, whichever lane and whenever: the case, the shared
/// bounds and what the report asks for.
struct Rules<'a> {
    case: &'a Case,
    /// Bounds at the reference's inputs, shared by the lanes judged.
    bounds: &'a SharedBounds,
    show_reference: bool,
    repro: bool,
}

impl Rules<'_> {
    /// `node` of `lane` judged against `reference` (see [`compare_lane`]),
    /// its introduced divergence fingerprinted, and with `--repro` the
    /// tensors behind it (not for the expected data, which the reference
    /// is judged by).
    fn node(
        &self,
        lane: &LaneRun,
        reference: &Trace,
        has_reference: bool,
        node: &Node,
    ) -> (LaneResult, Option<ReproEvidence>) {
        let case = self.case;
        let result = compare_lane(case, lane, reference, self.bounds, node);
        let mut result = uncompared(result, self.show_reference);
        let mut repro = None;
        if let (Some(trace), false) = (&lane.trace, lane.lane == Lane::Expected) {
            fingerprint_node(case, reference, trace, node, &mut result);
            if has_reference && self.repro {
                repro = repro_node(case, reference, &lane.name, trace, node, &result);
            }
        }
        (result, repro)
    }
}

/// What judging one lane needs besides the lane: the [`Rules`] and the
/// reference's trace (empty when it did not run); `spent` adds up the time
/// judging took (the report's `judge_ms`).
struct Judging<'a> {
    rules: &'a Rules<'a>,
    reference: &'a Trace,
    /// Whether the reference ran (`reference` is its trace, not an empty one).
    has_reference: bool,
    spent: Mutex<std::time::Duration>,
}

/// One lane judged against the reference: its result per node (graph
/// order), its info, and what reporters keep of its trace (the tensors of
/// its first divergence, with `--repro` those of each introduced one).
struct JudgedLane {
    name: String,
    info: LaneInfo,
    results: Vec<LaneResult>,
    evidence: Option<NodeEvidence>,
    repro: Vec<ReproEvidence>,
}

impl Judging<'_> {
    fn judge(&self, lane: LaneRun) -> JudgedLane {
        self.judge_with(lane, None)
    }

    /// Every node of `lane` judged (in parallel, collected in graph order),
    /// with the evidence of its first divergence.
    fn judge_nodes(&self, lane: &LaneRun) -> Stepped {
        let reference = self.reference;
        let (results, repro): (Vec<_>, Vec<_>) = self
            .rules
            .case
            .graph
            .nodes
            .par_iter()
            .map(|node| self.rules.node(lane, reference, self.has_reference, node))
            .unzip();
        let evidence = match &lane.trace {
            Some(trace) if self.has_reference => Some(first_evidence(trace, reference, &results)),
            _ => None,
        };
        Stepped {
            results,
            evidence,
            repro: repro.into_iter().flatten().collect(),
            ..Stepped::default()
        }
    }

    /// Judges every node of `lane` (in parallel, collected in graph order)
    /// unless `stepped` judged them already (as the reference ran, or while
    /// the other lanes ran), and keeps its evidence; the lane's trace is
    /// dropped on return.
    fn judge_with(&self, mut lane: LaneRun, stepped: Option<Stepped>) -> JudgedLane {
        let start = std::time::Instant::now();
        let case = self.rules.case;
        let mut judged = match stepped {
            Some(s) => s,
            None => self.judge_nodes(&lane),
        };
        // The deployed outputs still to come (the bridge source's) are
        // needed only from here on: its worker ran them while the nodes
        // were judged. A worker that failed meanwhile fails the lane.
        let waited = std::time::Instant::now();
        let pending = lane.pending.is_some();
        lane.settle(case);
        let waited = waited.elapsed();
        if pending && lane.trace.is_none() {
            judged = self.judge_nodes(&lane);
        }
        let mut info = lane.info;
        if let (Some(trace), true) = (&lane.trace, self.rules.show_reference) {
            info.model_outputs = model_outputs(case, trace, self.reference);
        }
        if let Ok(mut spent) = self.spent.lock() {
            // Waiting for a worker is not judging.
            *spent += start.elapsed().saturating_sub(waited);
        }
        JudgedLane {
            name: lane.name,
            info,
            evidence: judged.first_evidence(),
            results: judged.results,
            repro: judged.repro,
        }
    }
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
    let a = run_lane(
        EngineLane::backend(backend, device),
        case,
        &NoBridge,
        None,
        false,
    )?;
    let b = run_lane(
        EngineLane::on_device(backend, baseline),
        case,
        &NoBridge,
        None,
        false,
    )?;
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
fn compare_lane(
    case: &Case,
    lane: &LaneRun,
    reference: &Trace,
    bounds: &SharedBounds,
    node: &Node,
) -> LaneResult {
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
        let run = trace.nodes.get(node.index);
        result.lowering = run.and_then(|n| n.lowering.clone());
        result.bridged = run.and_then(|n| n.bridged.clone());
        if let Some((verdict, m)) = node_status(trace, node.index).and_then(not_run) {
            (result.verdict, result.message) = (verdict, Some(m));
            return result;
        }
    }
    match node_status(reference, node.index) {
        // Downstream of a node the reference could not run (and could not
        // bridge): no total comparison, but the node is still judged on the
        // lane's own inputs.
        Some(NodeStatus::Skipped(m)) if !is_expected => {
            judge_locally(case, trace, reference, bounds, node, &mut result);
            if result.local.is_none() {
                result.verdict = Verdict::Skipped;
                result.message = Some(format!("no reference value: {m}"));
            }
            return result;
        }
        Some(status) => {
            if let Some((_, m)) = not_run(status) {
                result.verdict = Verdict::Skipped;
                result.message = Some(format!("no reference value: {m}"));
                return result;
            }
        }
        None => {}
    }
    let compared = compare_outputs(case, trace, reference, node, is_expected, &mut result);
    if is_expected && compared == 0 {
        result.verdict = Verdict::Skipped;
        result.message = Some("no expected value for this node".into());
    }
    if is_expected {
        // The expected data judges the reference itself. Where ONNX's own
        // values of the node's inputs are known too (expanded function
        // tests expose intermediates through `Identity`, see
        // `identity_aliases`), the reference is also judged on those: a
        // difference it reproduces within the op's bound from ONNX's
        // float32 intermediates is carried in, not the node's.
        if result.verdict == Verdict::Diverged && lane_inputs(case, trace, node).is_ok() {
            judge_locally(case, trace, reference, bounds, node, &mut result);
        }
        if result.verdict == Verdict::Diverged && result.origin.is_none() {
            result.origin = Some(Origin::Introduced);
        }
    } else {
        judge_locally(case, trace, reference, bounds, node, &mut result);
    }
    result
}

/// Sets the local comparisons of `result`'s outputs and its origin: a node
/// whose local comparison exceeds the bound is diverged and introduced it;
/// a node that diverged only in the total comparison inherited it. Without
/// a local comparison (the reference cannot run the node on this lane's
/// inputs) the node gets a note and no origin.
fn judge_locally(
    case: &Case,
    trace: &Trace,
    reference: &Trace,
    bounds: &SharedBounds,
    node: &Node,
    result: &mut LaneResult,
) {
    // Within the case tolerance and within the op's bound of the
    // reference's own output: nothing to re-run (see [`SharedBounds`]).
    let shared = (result.verdict != Verdict::Diverged)
        .then(|| bounds.within(case, trace, reference, node))
        .flatten();
    let (locals, identical) = match shared {
        Some(l) => (l, false),
        None => match local_comparisons(case, trace, reference, node) {
            Ok(l) => l,
            Err(note) => {
                result.local_note = Some(note);
                return;
            }
        },
    };
    let mut introduced = false;
    for (out, c) in locals {
        let past = !c.ok();
        introduced |= past;
        if past && result.local.as_ref().is_none_or(Comparison::ok) {
            result.local = Some(c.clone());
        }
        result.local.get_or_insert_with(|| c.clone());
        // An output with no total comparison (no reference value) is judged
        // by its local one alone.
        let o = result
            .outputs
            .entry(out)
            .or_insert_with(|| OutputResult::new(Verdict::Ok, None));
        if past {
            o.verdict = o.verdict.max(Verdict::Diverged);
        }
        o.local = Some(c);
    }
    if introduced {
        result.verdict = result.verdict.max(Verdict::Diverged);
        result.origin = Some(Origin::Introduced);
    } else if result.verdict == Verdict::Diverged && identical {
        // Nothing to inherit: the node read exactly the reference's inputs,
        // so its own error is the whole difference, and it is within the
        // op's bound (only the case tolerance is tighter): rounding.
        within_bound(result);
    }
    if result.verdict == Verdict::Diverged && result.origin.is_none() {
        result.origin = Some(Origin::Inherited);
    }
}

/// A node whose whole difference is within its op's bound: ok, each output
/// that only the case tolerance called diverged included.
fn within_bound(result: &mut LaneResult) {
    for o in result.outputs.values_mut() {
        if o.verdict == Verdict::Diverged && o.local.as_ref().is_some_and(Comparison::ok) {
            o.verdict = Verdict::Ok;
        }
    }
    if result
        .outputs
        .values()
        .all(|o| o.verdict != Verdict::Diverged)
    {
        result.verdict = Verdict::Ok;
        result.message = Some(
            "within its op's bound on the reference's own inputs; only the case tolerance is tighter"
                .into(),
        );
    }
}

/// Input `name` of a node as this lane received it: the case's graph input
/// or initializer, else the lane's own value (its dtype as logical dtype),
/// else the value bridged in for a node it could not run.
fn lane_input(case: &Case, trace: &Trace, name: &str, form: Form) -> Option<RefTensor> {
    let wrap = match form {
        Form::Widened => RefTensor::from_host,
        Form::Own => RefTensor::unwidened,
    };
    // A weight not kept as a host tensor is converted (widened straight
    // from its bytes) for this alone.
    if !case.inputs.contains_key(name) {
        let inits = &case.graph.initializers;
        let r = match form {
            Form::Widened => RefTensor::initializer(inits, name),
            Form::Own => inits.with(name, wrap),
        };
        if r.is_some() {
            return r;
        }
    }
    received(case, trace, name).map(wrap)
}

/// How a local evaluation holds the lane's values: widened to float64, as
/// the reference computes, or in the lane's own dtype, for an op that only
/// moves elements ([`bound::MOVES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Widened,
    Own,
}

/// How `node` is evaluated locally for judging (see [`Form`]).
fn judging_form(node: &Node) -> Form {
    // Widening is exact and their bound is 0 ulps: the same comparison,
    // without float64 copies (on swin_t these ops carry over a third of
    // all values).
    if bound::MOVES.contains(&node.op_type.as_str()) {
        Form::Own
    } else {
        Form::Widened
    }
}

/// Input `name` of a node as this lane received it, in the lane's dtype.
fn received<'a>(case: &'a Case, trace: &'a Trace, name: &str) -> Option<&'a Tensor> {
    case.inputs
        .get(name)
        .or_else(|| case.graph.initializers.get(name))
        .or_else(|| trace.values.get(name))
        .or_else(|| trace.bridged.get(name))
}

/// Whether the lane's value of `name` is bit for bit the reference's.
fn same_as_reference(lane: &RefTensor, case: &Case, reference: &Trace, name: &str) -> bool {
    match (reference.values.get(name), &lane.data) {
        // Held unwidened ([`Form::Own`]): compared as widened.
        (Some(Tensor::F64(r)), Tensor::F32(l)) => {
            l.shape() == r.shape()
                && l.iter().zip(r).all(|(&p, &q)| {
                    let p = f64::from(p);
                    p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())
                })
        }
        (Some(r), l) if l.dtype().is_float() && l.dtype() != r.dtype() => {
            r.same_bits(&l.cast(DType::F64))
        }
        (Some(r), l) => r.same_bits(l),
        // A graph input or initializer: every lane reads the case's own.
        (None, _) => case.inputs.contains_key(name) || case.graph.initializers.contains_key(name),
    }
}

/// Per output of `node` with a lane value: the lane's value against the
/// reference evaluated on the lane's own inputs, under the op's bound
/// (`diff::bound`). When every input is bit-identical to the reference's,
/// the reference's own outputs are that evaluation (local = total). `Err`
/// says why there is no local comparison.
fn local_comparisons(
    case: &Case,
    trace: &Trace,
    reference: &Trace,
    node: &Node,
) -> Result<(Vec<(String, Comparison)>, bool), String> {
    local_comparisons_as(case, trace, reference, node, judging_form(node))
}

/// [`local_comparisons`] with the lane's values held as `form` says.
fn local_comparisons_as(
    case: &Case,
    trace: &Trace,
    reference: &Trace,
    node: &Node,
    form: Form,
) -> Result<(Vec<(String, Comparison)>, bool), String> {
    let Evaluation {
        inputs,
        wants,
        identical,
    } = local_evaluation(case, trace, reference, node, form)?;
    let refs: Vec<Option<&RefTensor>> = inputs.iter().map(Option::as_ref).collect();
    let mut out = Vec::new();
    for (k, (name, want)) in node.outputs.iter().zip(&wants).enumerate() {
        let (Some(want), Some(got)) = (want, trace.values.get(name)) else {
            continue;
        };
        let b = bound::bound_for(
            node,
            case.graph.opset,
            &refs,
            k,
            &want.data,
            want.dtype,
            &case.tolerances,
        )
        .map_err(|e| e.to_string())?;
        out.push((name.clone(), bound::compare_bounded(got, want, &b)));
    }
    Ok((out, identical))
}

/// Whether every input the lane fed `node` is bit for bit the reference's:
/// then the local comparison is the total one.
fn inputs_identical(
    case: &Case,
    reference: &Trace,
    node: &Node,
    inputs: &[Option<RefTensor>],
) -> bool {
    node.inputs.iter().zip(inputs).all(|(name, v)| {
        v.as_ref()
            .is_none_or(|v| same_as_reference(v, case, reference, name))
    })
}

/// Inputs (`None` where omitted) and outputs of a local comparison, and
/// whether the inputs were bit for bit the reference's (checked once).
struct Evaluation {
    inputs: Vec<Option<RefTensor>>,
    wants: Vec<Option<RefTensor>>,
    identical: bool,
}

/// The lane's inputs to `node` (upcast) and the reference's outputs on
/// them, per output (`None` where it has none). When every input is
/// bit-identical to the reference's, the reference's own outputs are that
/// evaluation. `Err` says why there is none.
fn local_evaluation(
    case: &Case,
    trace: &Trace,
    reference: &Trace,
    node: &Node,
    form: Form,
) -> Result<Evaluation, String> {
    let inputs = lane_inputs_as(case, trace, node, form)?;
    let identical = inputs_identical(case, reference, node, &inputs);
    let refs: Vec<Option<&RefTensor>> = inputs.iter().map(Option::as_ref).collect();
    let wants: Vec<Option<RefTensor>> = if identical {
        let value = |o: &String| reference_value(case, reference, o).filter(|_| !o.is_empty());
        node.outputs.iter().map(value).collect()
    } else {
        reference::run_op(node, case.graph.opset, &refs).map_err(|e| {
            let (crate::op::OpError::Unsupported(m) | crate::op::OpError::Failed(m)) = e;
            format!("the reference cannot run this node on the lane's inputs: {m}")
        })?
    };
    Ok(Evaluation {
        inputs,
        wants,
        identical,
    })
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
                let missing = OutputResult::new(Verdict::Error, None);
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
        let compared_output = OutputResult::new(verdict, Some(c));
        result.outputs.insert(out.clone(), compared_output);
    }
    compared
}

/// The case report from the lanes judged (in report order) and the
/// reference's own results, with the evidence the lanes kept.
fn build_report(
    case: &Case,
    reference: &LaneRun,
    lanes: Vec<JudgedLane>,
    show_reference: bool,
    infos: Option<Vec<Vec<OutputInfo>>>,
) -> (CaseReport, Evidence) {
    let empty = Trace::default();
    let ref_trace = reference.trace.as_ref().unwrap_or(&empty);
    let mut infos: Vec<Option<Vec<OutputInfo>>> = match infos {
        Some(infos) => infos.into_iter().map(Some).collect(),
        None => vec![None; case.graph.nodes.len()],
    };
    let mut nodes: Vec<NodeReport> = case
        .graph
        .nodes
        .par_iter()
        .zip(infos.par_iter_mut())
        .map(|(node, infos)| {
            let mut by_lane = BTreeMap::new();
            if show_reference {
                by_lane.insert(REFERENCE.to_string(), reference_result(reference, node));
            }
            NodeReport {
                index: node.index,
                name: node.name.clone(),
                op: node.op_type.clone(),
                class: bound::class(node).name().to_string(),
                outputs: infos
                    .take()
                    .unwrap_or_else(|| output_infos(case, ref_trace, node)),
                lanes: by_lane,
            }
        })
        .collect();
    let mut all_lanes: Vec<LaneInfo> = Vec::new();
    if show_reference {
        all_lanes.push(reference.info.clone());
    }
    let mut evidence = Evidence::default();
    for lane in lanes {
        for (node, r) in nodes.iter_mut().zip(lane.results) {
            node.lanes.insert(lane.name.clone(), r);
        }
        if let Some(e) = lane.evidence {
            evidence.lanes.insert(lane.name.clone(), e);
        }
        evidence.repro.extend(lane.repro);
        all_lanes.push(lane.info);
    }
    // Graph order, then lane order (the sort is stable).
    evidence.repro.sort_by_key(|r| r.node);
    let judge = judge_of(reference, show_reference, case.graph.nodes.len());
    let (failures, warnings) = verdict::judge(case, &judge, &mut nodes, &mut all_lanes);
    let first_divergence = first_divergences(&nodes, &all_lanes);
    let report = CaseReport {
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
        judge_ms: 0.0,
    };
    (report, evidence)
}

/// The lane's graph outputs (as deployed, where the trace has them) against
/// the reference's, each under the case tolerance of its producing op;
/// `None` when no output has a value on both sides.
fn model_outputs(case: &Case, trace: &Trace, reference: &Trace) -> Option<ModelOutputs> {
    let deployed = !trace.deployed.is_empty();
    let mut compared = 0;
    let mut agree = true;
    let mut worst: Option<(f64, WorstOutput)> = None;
    for name in case.graph.outputs.iter().map(|o| &o.name) {
        let got = trace.deployed.get(name).or_else(|| trace.values.get(name));
        let (Some(got), Some(want)) = (got, reference.values.get(name)) else {
            continue;
        };
        compared += 1;
        let dtype = reference.logical.get(name).copied().unwrap_or(want.dtype());
        let op = case
            .graph
            .nodes
            .iter()
            .find(|n| n.outputs.contains(name))
            .map_or("", |n| n.op_type.as_str());
        let tolerance = case.tolerances.get(op, dtype);
        let comparison = diff::compare(got, want, dtype, tolerance);
        agree &= comparison.ok();
        let excess = match &comparison {
            Comparison::Metrics(m) => match (m.worst_value, m.worst_reference) {
                (Some(v), Some(r)) => (v - r).abs() / (tolerance.atol + tolerance.rtol * r.abs()),
                _ => 0.0,
            },
            _ => f64::INFINITY,
        };
        if worst.as_ref().is_none_or(|(e, _)| excess > *e) {
            let w = WorstOutput {
                output: name.clone(),
                comparison,
                tolerance,
            };
            worst = Some((excess, w));
        }
    }
    (compared > 0).then(|| ModelOutputs {
        agree,
        deployed,
        compared,
        total: case.graph.outputs.len(),
        worst: worst.map(|(_, w)| w),
    })
}

/// A node result that compared nothing is not `ok`: it is `skipped`.
fn uncompared(mut r: LaneResult, reference_run: bool) -> LaneResult {
    let compared = r.outputs.values().any(OutputResult::compared);
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

/// The tensors behind a lane's first divergence (the first node, in graph
/// order, it diverged or errored on; see [`Evidence`]): the diverged outputs
/// with metrics (same shape and dtype) when that node's verdict is `diverged`.
fn first_evidence(
    trace: &Trace,
    reference: &Trace,
    results: &[LaneResult],
) -> Option<NodeEvidence> {
    let (index, result) = results
        .iter()
        .enumerate()
        .find(|(_, r)| matches!(r.verdict, Verdict::Diverged | Verdict::Error))?;
    node_evidence(trace, reference, index, result)
}

/// The tensors of node `index`'s diverged outputs with metrics, when its
/// verdict (`result`) is `diverged`.
fn node_evidence(
    trace: &Trace,
    reference: &Trace,
    index: usize,
    result: &LaneResult,
) -> Option<NodeEvidence> {
    if result.verdict != Verdict::Diverged {
        return None;
    }
    let outputs = result
        .outputs
        .iter()
        .filter(|(_, r)| {
            r.verdict == Verdict::Diverged && matches!(r.comparison, Some(Comparison::Metrics(_)))
        })
        .filter_map(|(name, _)| {
            let pair = TensorPair {
                got: trace.values.get(name)?.clone(),
                want: reference.values.get(name)?.clone(),
            };
            Some((name.clone(), pair))
        })
        .collect();
    Some(NodeEvidence {
        node: index,
        outputs,
    })
}

/// For `--repro`: when `node`'s divergence in lane `name` (not the
/// expected data) is introduced (`r`), the tensors the lane fed the node
/// and the reference's outputs on them, in their logical dtype.
fn repro_node(
    case: &Case,
    reference: &Trace,
    name: &str,
    trace: &Trace,
    node: &Node,
    r: &LaneResult,
) -> Option<ReproEvidence> {
    if r.origin != Some(Origin::Introduced) {
        return None;
    }
    let evaluation = local_evaluation(case, trace, reference, node, Form::Widened).ok()?;
    let mut inputs: Vec<(String, Tensor)> = Vec::new();
    for input in node.inputs.iter().filter(|i| !i.is_empty()) {
        if let (false, Some(t)) = (
            inputs.iter().any(|(k, _)| k == input),
            received(case, trace, input),
        ) {
            inputs.push((input.clone(), t.clone()));
        }
    }
    let outputs = node
        .outputs
        .iter()
        .zip(evaluation.wants)
        .filter(|(o, _)| !o.is_empty())
        .filter_map(|(o, w)| w.map(|w| (o.clone(), logical(w))))
        .collect();
    Some(ReproEvidence {
        lane: name.to_string(),
        node: node.index,
        inputs,
        outputs,
    })
}

/// A reference value in its logical dtype (float64 maths rounded to it).
fn logical(r: RefTensor) -> Tensor {
    if r.dtype.is_float() {
        r.data.cast(r.dtype)
    } else {
        r.data
    }
}

/// The reference lane's own result on `node` (shown with `--backends ...,reference`).
fn reference_result(reference: &LaneRun, node: &Node) -> LaneResult {
    let mut r = LaneResult {
        lowering: Some("spec".into()),
        ..LaneResult::new(Verdict::Ok)
    };
    r.bridged = reference
        .trace
        .as_ref()
        .and_then(|t| t.nodes.get(node.index))
        .and_then(|n| n.bridged.clone());
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

/// The reference's value of `name` (its logical dtype kept), or the case's
/// input / initializer.
fn reference_value(case: &Case, reference: &Trace, name: &str) -> Option<RefTensor> {
    if let Some(t) = reference.values.get(name) {
        let mut r = RefTensor::from_host(t);
        r.dtype = reference_dtype(reference, name, t);
        return Some(r);
    }
    match case.inputs.get(name) {
        Some(t) => Some(RefTensor::from_host(t)),
        // A weight not kept as a host tensor is widened for this alone.
        None => RefTensor::initializer(&case.graph.initializers, name),
    }
}

/// The logical dtype of the reference's value `name`, held as `held`: the
/// dtype the graph gives it where the reference holds a float wider.
fn reference_dtype(reference: &Trace, name: &str, held: &Tensor) -> DType {
    match reference.logical.get(name) {
        Some(&d) if d.is_float() && held.dtype().is_float() => d,
        _ => held.dtype(),
    }
}

/// The values `trace`'s lane fed `node` (its own outputs upstream, upcast;
/// graph inputs and initializers from the case; `None` for an omitted
/// optional input); `Err` names the first input the lane has no value of.
fn lane_inputs(case: &Case, trace: &Trace, node: &Node) -> Result<Vec<Option<RefTensor>>, String> {
    lane_inputs_as(case, trace, node, Form::Widened)
}

/// [`lane_inputs`], held as `form` says.
fn lane_inputs_as(
    case: &Case,
    trace: &Trace,
    node: &Node,
    form: Form,
) -> Result<Vec<Option<RefTensor>>, String> {
    node.inputs
        .iter()
        .map(|n| {
            if n.is_empty() {
                return Ok(None);
            }
            lane_input(case, trace, n, form)
                .map(Some)
                .ok_or_else(|| format!("no lane value for input `{n}`"))
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

/// Fingerprints `node`'s divergence in one lane (not the reference's nor
/// the expected data's) when it is introduced and its op has a fingerprint
/// table: searched on the reference's inputs, verified on the lane's own
/// (`fingerprint::verify`). `r` is the lane's result on `node`.
fn fingerprint_node(
    case: &Case,
    reference: &Trace,
    trace: &Trace,
    node: &Node,
    r: &mut LaneResult,
) {
    let opset = case.graph.opset;
    if !crate::fingerprint::supports(&node.op_type)
        || r.verdict != Verdict::Diverged
        || r.origin != Some(Origin::Introduced)
    {
        return;
    }
    let Some((k, got)) = node.outputs.iter().enumerate().find_map(|(k, o)| {
        let diverged = r
            .outputs
            .get(o)
            .is_some_and(|x| x.verdict == Verdict::Diverged);
        trace.values.get(o).filter(|_| diverged).map(|t| (k, t))
    }) else {
        return;
    };
    let Some(ins) = reference_inputs(case, reference, node) else {
        return;
    };
    let refs: Vec<Option<&RefTensor>> = ins.iter().map(Option::as_ref).collect();
    r.fingerprint = crate::fingerprint::fingerprint(node, opset, &refs, k, got).map(|mut fp| {
        let ok = lane_inputs(case, trace, node).is_ok_and(|own| {
            let own: Vec<Option<&RefTensor>> = own.iter().map(Option::as_ref).collect();
            crate::fingerprint::verify(&fp, node, opset, &own, got)
        });
        crate::fingerprint::mark_verified(&mut fp, ok);
        fp
    });
}

/// A case from TOML `text` and the reference's trace of it (tests).
#[cfg(test)]
fn case_and_reference(text: &str) -> (Case, Trace) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case.toml");
    std::fs::write(&path, text).expect("write case");
    let case = crate::case::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let engine = backend::engine(REFERENCE).expect("reference");
    let mut session = engine.prepare(&case.graph, &case.options).expect("prepare");
    let reference = session.run(&case.inputs).expect("run");
    (case, reference)
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

#[cfg(all(test, feature = "tch-backend"))]
mod tests {
    /// Moves judged in the lane's own dtype ([`Form::Own`]) compare as
    /// when widened to float64: the same comparisons and the same "inputs
    /// identical to the reference's", over a chain of moves where the lane
    /// departs at one node, follows the reference's rounding at the others
    /// (its inputs then bit for bit the reference's), and reads a graph
    /// input.
    #[test]
    fn moves_judged_in_the_lanes_dtype_compare_as_widened() {
        const MOVES_CASE: &str = r#"
name = "moves"
seed = 3
[model.graph]
opset = 11
inputs = [{ name = "X", shape = [2, 3, 4] }]
outputs = ["Y"]
[[model.graph.nodes]]
name = "t"
op = "Transpose"
inputs = ["X"]
outputs = ["T"]
attrs = { perm = [0, 2, 1] }
[[model.graph.nodes]]
name = "f"
op = "Flatten"
inputs = ["T"]
outputs = ["F"]
attrs = { axis = 1 }
[[model.graph.nodes]]
name = "u"
op = "Unsqueeze"
inputs = ["F"]
outputs = ["U"]
attrs = { axes = [0] }
[[model.graph.nodes]]
name = "c"
op = "Concat"
inputs = ["U", "U"]
outputs = ["C"]
attrs = { axis = 0 }
[[model.graph.nodes]]
name = "s"
op = "Split"
inputs = ["C"]
outputs = ["S0", "S1"]
attrs = { axis = 2, split = [5, 7] }
[[model.graph.nodes]]
name = "y"
op = "Identity"
inputs = ["S1"]
outputs = ["Y"]
"#;
        let (case, reference) = super::case_and_reference(MOVES_CASE);
        let mut trace = Trace::default();
        for (name, v) in &reference.values {
            let mut x = v.to_f64_vec();
            if name == "T" {
                x[5] *= 1.5;
            }
            trace
                .values
                .insert(name.clone(), Tensor::from_f64(DType::F32, v.shape(), &x));
        }
        let mut identical = vec![];
        for node in &case.graph.nodes {
            let own = local_comparisons_as(&case, &trace, &reference, node, Form::Own);
            let wide = local_comparisons_as(&case, &trace, &reference, node, Form::Widened);
            assert_eq!(format!("{own:?}"), format!("{wide:?}"), "{}", node.name);
            let (comparisons, same) = own.expect("evaluated");
            assert!(!comparisons.is_empty(), "{}", node.name);
            identical.push((node.name.as_str(), same, comparisons[0].1.ok()));
        }
        let want = [
            ("t", true, false),
            ("f", false, false),
            ("u", true, true),
            ("c", true, true),
            ("s", true, true),
            ("y", true, true),
        ];
        assert_eq!(identical, want);
        assert_eq!(judging_form(&case.graph.nodes[0]), Form::Own);
    }

    use super::*;

    /// Resize → Relu → Resize with a `tch:port` lane (see the fixture's header).
    const CASE: &str = include_str!("../tests/fixtures/port-chain.toml");

    fn report() -> CaseReport {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("case.toml");
        std::fs::write(&path, CASE).expect("write case");
        let cases = crate::case::load(&path).unwrap_or_else(|e| panic!("{e}"));
        run_case(&cases[0], &["tch".to_string(), "reference".to_string()])
            .expect("run")
            .report
    }

    fn lane<'a>(r: &'a CaseReport, node: &str, lane: &str) -> &'a LaneResult {
        let n = r.nodes.iter().find(|n| n.name == node).expect("node");
        n.lanes.get(lane).expect("lane")
    }

    #[test]
    fn each_node_is_judged_on_its_own_inputs() {
        let r = report();
        // The port departs at the first Resize; Relu only carries it on.
        assert_eq!(lane(&r, "up", "tch:port").origin, Some(Origin::Introduced));
        let relu = lane(&r, "relu", "tch:port");
        assert_eq!(relu.verdict, Verdict::Diverged);
        assert_eq!(relu.origin, Some(Origin::Inherited));
        assert!(relu.local.as_ref().is_some_and(Comparison::ok), "{relu:?}");
        // The second Resize departs again on its own (already wrong) inputs:
        // the producer-verdict rule called it inherited.
        let up2 = lane(&r, "up2", "tch:port");
        assert_eq!(up2.origin, Some(Origin::Introduced), "{up2:?}");
        assert!(!up2.local.as_ref().expect("local").ok());
        // The faithful lane agrees locally everywhere, exactly for these exact ops.
        for node in ["up", "relu", "up2"] {
            let l = lane(&r, node, "tch");
            let m = l
                .local
                .as_ref()
                .and_then(Comparison::metrics)
                .expect("local");
            assert_eq!(m.bound_ratio, Some(0.0), "{node}: {l:?}");
        }
    }
}

/// A node the reference cannot run, with no lane to bridge it from, blinds
/// that node alone: the nodes after it are judged on the lane's own inputs.
#[cfg(test)]
mod blind_tests {
    use super::*;
    use crate::backend::NodeRun;

    /// `X -> sin -> relu`: the reference has no `Bernoulli` (a random op,
    /// compared by distribution only), which stands in for an op it lacks.
    const CASE: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.nodes]]
name = "sin"
op = "Bernoulli"
inputs = ["X"]
outputs = ["A"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["A"]
outputs = ["Y"]
"#;

    /// A lane that ran both nodes: `sin` in f32, then `relu` (negated when `wrong`).
    fn lane(case: &Case, wrong: bool) -> LaneRun {
        let x = case.inputs["X"].to_f64_vec();
        let a: Vec<f64> = x.iter().map(|v| (*v as f32).sin() as f64).collect();
        let sign = if wrong { -1.0 } else { 1.0 };
        let y: Vec<f64> = a.iter().map(|v| sign * v.max(0.0)).collect();
        let mut trace = Trace::default();
        trace
            .values
            .insert("A".into(), Tensor::from_f64(DType::F32, &[2, 3], &a));
        trace
            .values
            .insert("Y".into(), Tensor::from_f64(DType::F32, &[2, 3], &y));
        let ran = NodeRun {
            status: NodeStatus::Ran,
            lowering: None,
            bridged: None,
        };
        trace.nodes = vec![ran.clone(), ran];
        let l = EngineLane::backend("fake", Device::Cpu);
        LaneRun::new(l.clone().into(), Some(trace), lane_info(l.to_string()))
    }

    #[test]
    fn the_nodes_after_a_blind_node_are_judged_on_the_lanes_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("case.toml");
        std::fs::write(&path, CASE).expect("write case");
        let case = &crate::case::load(&path).unwrap_or_else(|e| panic!("{e}"))[0];
        let engine = backend::engine(REFERENCE).expect("reference");
        let mut session = engine.prepare(&case.graph, &case.options).expect("prepare");
        let reference = session.run(&case.inputs).expect("run");
        assert!(matches!(reference.nodes[1].status, NodeStatus::Skipped(_)));
        let bounds = SharedBounds::new(case.graph.nodes.len());

        let relu = &case.graph.nodes[1];
        let r = compare_lane(case, &lane(case, false), &reference, &bounds, relu);
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        let y = &r.outputs["Y"];
        assert!(y.comparison.is_none() && y.local.as_ref().is_some_and(Comparison::ok));

        let r = compare_lane(case, &lane(case, true), &reference, &bounds, relu);
        assert_eq!(r.verdict, Verdict::Diverged, "{r:?}");
        assert_eq!(r.origin, Some(Origin::Introduced));
        // The blind node itself has nothing to be compared with.
        let r = compare_lane(
            case,
            &lane(case, false),
            &reference,
            &bounds,
            &case.graph.nodes[0],
        );
        assert_eq!(r.verdict, Verdict::Skipped, "{r:?}");
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::run_concurrently;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Results come in the jobs' order; this thread takes jobs beside the
    /// one it starts, so two jobs run at once (the first waits until the
    /// second has started, which one thread alone could never do), and no
    /// more than asked.
    #[test]
    fn jobs_run_side_by_side_and_come_back_in_order() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let started = AtomicUsize::new(0);
        let out = run_concurrently(&[0usize, 1, 2, 3, 4, 5], 2, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            started.fetch_add(1, Ordering::SeqCst);
            if i == 0 {
                let until = Instant::now() + Duration::from_secs(10);
                while started.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            running.fetch_sub(1, Ordering::SeqCst);
            (i, std::thread::current().id())
        });
        assert_eq!(
            out.iter().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
        assert!(out.iter().any(|r| r.1 == std::thread::current().id()));
    }
}
