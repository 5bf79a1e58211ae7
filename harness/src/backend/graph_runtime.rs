//! What every whole-graph runtime (ONNX Runtime today, tract tomorrow) needs
//! to fit the per-node [`Engine`](super::Engine) model, written once.
//!
//! Such a runtime runs the whole graph in one session and shows only graph
//! outputs, so the model is "tapped": every node output becomes a graph
//! output. Exposing values can block fusions, so the untapped model is run
//! too and any change in the final outputs is reported as a note. A runtime
//! implements [`GraphRuntime`] (load model bytes, run on host tensors) and
//! [`prepare`] does the rest: tapping, the untapped run, the note, and a
//! [`NodeRun`] per node built from the values that came back.
//!
//! The untapped run costs a second session, so it is done only where it can
//! show something and only once per model: only when tapping added outputs
//! (a graph whose every node output is already a graph output, as a
//! single-op case's, *is* its own tapped model: nothing to block), and from
//! the second variant in a row of the same model (same bytes, same options)
//! in this thread, the untapped session is kept for the next one, with its
//! last outputs for the same inputs ([`Untapped`]). One model is kept at a
//! time (the variants of a sweep run one after the other), and a model run
//! once is not kept at all: its session would only raise the peak memory of
//! the rest of the case. It runs after the tapped model
//! ([`Session::deployed`]), so that the values of the traced run go to
//! whoever waits for them first; a model run once is loaded only then,
//! once the tapped session went, so that the two sessions (each as large
//! as the model's weights) are never held at once (a prepared graph is
//! then run once: a second run is refused, not run without the deployed
//! outputs).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Instant;

use super::engine::{Bridge, Deployed, EngineError, NodeRun, NodeStatus, Session, Trace};
use crate::graph::{Graph, Node};
use crate::onnx::{ModelProto, ValueInfoProto};
use crate::options::EngineOptions;
use crate::tensor::Tensor;

/// A whole-graph runtime: loads serialized ONNX models and runs them.
pub trait GraphRuntime {
    /// How messages name the runtime (`ORT returned no value for ...`).
    const LABEL: &'static str;
    /// A model loaded for one device and set of options.
    type Loaded: LoadedModel + Send + 'static;
    /// Loads an ONNX model.
    fn load(&self, model: ModelSource, opts: &EngineOptions) -> Result<Self::Loaded, EngineError>;
    /// The settings a session runs with (device, optimization level, versions).
    fn settings(&self, opts: &EngineOptions) -> Vec<(String, String)>;
    /// Why the runtime cannot run `node`, for a runtime that runs part of a
    /// graph and leaves such nodes without values; by default none.
    fn unsupported(&self, _node: &Node) -> Option<String> {
        None
    }
    /// Whether tapping can change what the runtime computes (fusions); a
    /// runtime that evaluates node by node says no, and its untapped model
    /// is neither loaded nor run (its final outputs are the tapped ones).
    const TAPPING_CAN_CHANGE_VALUES: bool = true;
    /// Whether the runtime reads a model's external data from the model's
    /// folder itself ([`ModelSource::External`]); by default it is given
    /// the model with its weights read in.
    const READS_EXTERNAL_DATA: bool = false;
}

/// Where a runtime reads a model from.
#[derive(Debug, Clone, Copy)]
pub enum ModelSource<'a> {
    /// A serialized model, weights included (under protobuf's 2 GiB limit).
    Memory(&'a [u8]),
    /// A model file whose weights lie in ONNX external data beside it.
    File(&'a Path),
    /// A serialized model whose weights lie in ONNX external data files in
    /// `folder` (the model file's own), for a runtime that reads them
    /// itself ([`GraphRuntime::READS_EXTERNAL_DATA`]).
    External { bytes: &'a [u8], folder: &'a Path },
}

impl<'a> ModelSource<'a> {
    /// Serialized `bytes`, whose external data (if any) lies in `folder`.
    fn of(bytes: &'a [u8], folder: Option<&'a Path>) -> ModelSource<'a> {
        match folder {
            Some(folder) => ModelSource::External { bytes, folder },
            None => ModelSource::Memory(bytes),
        }
    }
}

/// A loaded model: graph input name -> tensor in, output name -> tensor out.
pub trait LoadedModel {
    fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EngineError>;

    /// What the runtime logged for this model since the last call (note
    /// lines: its warnings and errors), so that nothing reaches stderr.
    fn log(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Why values of the last run did not come back, by value name, in the
    /// runtime's own words (a node that raised); by default none.
    fn failures(&mut self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// The model with every node output added as a graph output (appended after
/// the model's own outputs, which keep their places).
fn tapped_model(graph: &Graph, taps: Vec<ValueInfoProto>) -> ModelProto {
    let mut model = ModelProto::clone(&graph.model);
    model
        .graph
        .as_mut()
        .expect("validated graph")
        .output
        .extend(taps);
    model
}

/// The graph outputs tapping appends: every node output that is not one
/// of the model's own outputs, typed where the model says its type.
fn tap_outputs(graph: &Graph) -> Vec<ValueInfoProto> {
    let g = graph.model.graph.as_ref().expect("validated graph");
    let existing: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut taps = Vec::new();
    for node in &graph.nodes {
        for o in node
            .outputs
            .iter()
            .filter(|o| !o.is_empty() && !existing.contains(o.as_str()))
        {
            let typed = g.value_info.iter().find(|v| &v.name == o).cloned();
            taps.push(typed.unwrap_or_else(|| ValueInfoProto {
                name: o.clone(),
                ..Default::default()
            }));
        }
    }
    taps
}

/// The tapped model serialized without copying the model: protobuf merges
/// a message that appears twice, appending repeated fields, so the model's
/// own bytes followed by a model holding only the tap outputs parse as the
/// tapped model, and its first [`prost::Message::encoded_len`] bytes are
/// the untapped model. `None` past `limit` bytes.
fn tapped_bytes(graph: &Graph, taps: &[ValueInfoProto], limit: usize) -> Option<Vec<u8>> {
    let extra = taps_only(taps);
    let len = prost::Message::encoded_len(&*graph.model) + prost::Message::encoded_len(&extra);
    if len > limit {
        return None;
    }
    let mut bytes = Vec::with_capacity(len);
    prost::Message::encode_raw(&*graph.model, &mut bytes);
    prost::Message::encode_raw(&extra, &mut bytes);
    Some(bytes)
}

/// The model file `graph` was read from, when it keeps its weights in
/// external data (swin_t's 114 MB, any model past protobuf's 2 GiB) and the
/// file is unchanged: its own bytes with the tap outputs appended (as in
/// [`tapped_bytes`]), its length, and its folder. A runtime that reads
/// external data itself then maps the weights from their files: nothing
/// re-encodes or parses them (on swin_t ORT's two sessions took 0.50 s of
/// CPU from the model with its weights read in, 0.30 s this way).
fn external_file<'g>(
    graph: &'g Graph,
    taps: &[ValueInfoProto],
) -> Option<(Vec<u8>, usize, &'g Path)> {
    let file = graph.file.as_deref().filter(|f| f.external)?;
    file.unchanged().ok()?;
    let mut bytes = std::fs::read(&file.path).ok()?;
    let plain_len = bytes.len();
    prost::Message::encode_raw(&taps_only(taps), &mut bytes);
    Some((bytes, plain_len, file.path.parent()?))
}

/// A model holding only the tap outputs: appended to a model's bytes, it
/// makes them the tapped model's (protobuf merges the two).
fn taps_only(taps: &[ValueInfoProto]) -> ModelProto {
    ModelProto {
        graph: Some(crate::onnx::GraphProto {
            output: taps.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Protobuf's 2 GiB ceiling on one serialized message: a runtime cannot
/// parse a larger model from memory.
const PROTOBUF_LIMIT: usize = i32::MAX as usize;

/// Loads `graph` tapped and untapped on `runtime`: a session whose traces
/// hold every node's outputs.
pub fn prepare<R: GraphRuntime + Sync>(
    runtime: &'static R,
    graph: &Graph,
    opts: &EngineOptions,
) -> Result<Box<dyn Session>, EngineError> {
    prepare_within(runtime, graph, opts, PROTOBUF_LIMIT)
}

/// [`prepare`], loading from memory while the tapped model serializes to at
/// most `limit` bytes, and from files past it (see [`load_from_files`]).
pub(crate) fn prepare_within<R: GraphRuntime + Sync>(
    runtime: &'static R,
    graph: &Graph,
    opts: &EngineOptions,
    limit: usize,
) -> Result<Box<dyn Session>, EngineError> {
    let outputs = graph.model.graph.as_ref().map_or(0, |g| g.output.len());
    let taps = tap_outputs(graph);
    let untapped = R::TAPPING_CAN_CHANGE_VALUES && !taps.is_empty();
    let filed = R::READS_EXTERNAL_DATA.then(|| external_file(graph, &taps));
    let in_memory = match filed.flatten() {
        Some((bytes, plain_len, folder)) => Some((bytes, plain_len, Some(folder))),
        None => tapped_bytes(graph, &taps, limit)
            .map(|b| (b, prost::Message::encoded_len(&*graph.model), None)),
    };
    let (tapped, plain) = match in_memory {
        Some((bytes, plain_len, folder)) => {
            let source = |bytes| ModelSource::of(bytes, folder);
            let key = untapped.then(|| model_key(R::LABEL, source(&bytes[..plain_len]), opts));
            match key {
                None => (runtime.load(source(&bytes), opts)?, Plain::Same),
                Some(key) if Untapped::<R::Loaded>::kept_next(key) => {
                    // Kept for the next variant (a sweep's small models):
                    // the two sessions load at the same time (session
                    // creation is mostly one thread's graph optimization),
                    // the untapped one here, where the kept one lives
                    // ([`KEPT`] is per thread).
                    let (tapped, plain) = std::thread::scope(|s| {
                        let tapped = s.spawn(|| runtime.load(source(&bytes), opts));
                        let plain = Untapped::load(runtime, source(&bytes[..plain_len]), opts, key);
                        let tapped = tapped
                            .join()
                            .unwrap_or_else(|p| std::panic::resume_unwind(p));
                        (tapped, plain)
                    });
                    (tapped?, Plain::Kept(plain?))
                }
                Some(key) => {
                    Untapped::<R::Loaded>::run_once(key);
                    let tapped = runtime.load(source(&bytes), opts)?;
                    let folder = folder.map(Path::to_path_buf);
                    let opts = opts.clone();
                    let load = move || {
                        let source = ModelSource::of(&bytes[..plain_len], folder.as_deref());
                        runtime.load(source, &opts)
                    };
                    (tapped, Plain::Later(Some(Box::new(load))))
                }
            }
        }
        None => load_from_files(runtime, tapped_model(graph, taps), outputs, untapped, opts)?,
    };
    let nodes = graph
        .nodes
        .iter()
        .map(|n| NodeInfo {
            name: n.name.clone(),
            inputs: n.inputs.clone(),
            outputs: n.outputs.clone(),
            unsupported: runtime.unsupported(n),
        })
        .collect();
    Ok(Box::new(Tapped {
        tapped: Some(tapped),
        plain,
        finals: None,
        label: R::LABEL,
        nodes,
        final_outputs: graph.outputs.iter().map(|o| o.name.clone()).collect(),
        settings: runtime.settings(opts),
    }))
}

/// Loads a model when called.
type Load<M> = Box<dyn FnOnce() -> Result<M, EngineError> + Send>;

/// The model as users run it (untapped), beside the tapped one.
enum Plain<M: 'static> {
    /// Tapping cannot change values, or added no outputs: the tapped
    /// model's final outputs are the deployed ones.
    Same,
    /// Kept across the variants of a sweep ([`Untapped`]), loaded with the
    /// tapped model.
    Kept(Untapped<M>),
    /// Run once: loaded by [`Session::deployed`], after the tapped model's
    /// run and once its session went (`None` once loaded).
    Later(Option<Load<M>>),
}

/// Past protobuf's limit the runtime loads from files, as it loads a large
/// model exported by torch: the weights go once into a side file
/// (`weights.bin`, ONNX external data) in a temporary folder, and the tapped
/// and the plain model (the tapped one with its first `outputs` graph
/// outputs only: tapping appends) both reference it. The folder goes when
/// the plain model is loaded (after the tapped model's run): a runtime that
/// maps the side file keeps it readable (an unlinked file lives while
/// mapped).
fn load_from_files<R: GraphRuntime + Sync>(
    runtime: &'static R,
    mut tapped: ModelProto,
    outputs: usize,
    untapped: bool,
    opts: &EngineOptions,
) -> Result<(R::Loaded, Plain<R::Loaded>), EngineError> {
    let failed = |why: String| EngineError::Failed {
        engine: R::LABEL,
        why: format!(
            "writing the model for {} to load from a file: {why}",
            R::LABEL
        ),
    };
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    crate::graph::externalize(&mut tapped, dir.path(), "weights.bin")
        .map_err(|e| failed(e.to_string()))?;
    let mut plain = tapped.clone();
    if let Some(g) = plain.graph.as_mut() {
        g.output.truncate(outputs);
    }
    let write = |name: &str, m: &ModelProto| {
        let path = dir.path().join(name);
        std::fs::write(&path, prost::Message::encode_to_vec(m))
            .map(|_| path)
            .map_err(|e| failed(e.to_string()))
    };
    let tapped_path = write("tapped.onnx", &tapped)?;
    let tapped = runtime.load(ModelSource::File(&tapped_path), opts)?;
    if !untapped {
        return Ok((tapped, Plain::Same));
    }
    let path = write("plain.onnx", &plain)?;
    let opts = opts.clone();
    let load = move || {
        let model = runtime.load(ModelSource::File(&path), &opts);
        drop(dir);
        model
    };
    Ok((tapped, Plain::Later(Some(Box::new(load)))))
}

/// A graph loaded tapped (to see every value) and plain (as users run it).
///
/// The tapped model runs first ([`Session::run_bridged`]), and its values
/// go to whoever waits for them; the plain one runs after
/// ([`Session::deployed`]). A plain model run once ([`Plain::Later`]) is
/// loaded only then, once the tapped session went: a runtime's session
/// holds the model's weights (prepacked, for ORT), so two at once doubled
/// the lane's peak memory (vit_b_16: ORT's worker at 711 MB against ORT's
/// own 411 MB), and the other lanes, which wait for ORT's values (the
/// bridge), no longer wait for the second session too.
struct Tapped<M: 'static> {
    /// `None` once let go after its run (with a [`Plain::Later`] model).
    tapped: Option<M>,
    plain: Plain<M>,
    /// The tapped run's final outputs, until [`Session::deployed`].
    finals: Option<BTreeMap<String, Tensor>>,
    label: &'static str,
    /// In graph order.
    nodes: Vec<NodeInfo>,
    final_outputs: Vec<String>,
    settings: Vec<(String, String)>,
}

/// What the statuses need to know of a node.
struct NodeInfo {
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Why the runtime cannot run it.
    unsupported: Option<String>,
}

/// The untapped model of the last graph prepared in this thread, kept for
/// the next variant of the same model (see the module header).
struct Kept<M> {
    /// The model bytes' hash, with the runtime and its options.
    key: u64,
    model: M,
    /// The last inputs and the final outputs they gave.
    last: Option<(BTreeMap<String, Tensor>, BTreeMap<String, Tensor>)>,
}

thread_local! {
    static KEPT: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    /// The key of the last model prepared in this thread.
    static LAST: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// An untapped model kept for the next variant, given back to [`KEPT`] when
/// its session is dropped.
struct Untapped<M: 'static>(Option<Kept<M>>);

impl<M: LoadedModel + 'static> Untapped<M> {
    /// Whether the untapped model of `key` (its [`model_key`]) is worth
    /// keeping: the previous model prepared in this thread was this one.
    fn kept_next(key: u64) -> bool {
        LAST.with(|last| last.get()) == Some(key)
    }

    /// The model of `key` is run once: noted as the last one, and a model
    /// kept for another one goes.
    fn run_once(key: u64) {
        LAST.with(|last| last.set(Some(key)));
        drop(KEPT.with(|k| k.borrow_mut().take()));
    }

    /// The kept model when `key` is the kept one's, else a newly loaded one
    /// (kept from now on).
    fn load<R: GraphRuntime<Loaded = M>>(
        runtime: &R,
        source: ModelSource,
        opts: &EngineOptions,
        key: u64,
    ) -> Result<Self, EngineError> {
        LAST.with(|last| last.set(Some(key)));
        let kept = KEPT.with(|k| k.borrow_mut().take());
        match kept.and_then(|k| k.downcast::<Kept<M>>().ok()) {
            Some(k) if k.key == key => Ok(Untapped(Some(*k))),
            _ => {
                let model = runtime.load(source, opts)?;
                Ok(Untapped(Some(Kept {
                    key,
                    model,
                    last: None,
                })))
            }
        }
    }

    fn kept(&mut self) -> &mut Kept<M> {
        self.0.as_mut().expect("taken only on drop")
    }

    /// The final outputs on `inputs`: those of the last run when the inputs
    /// are the same bits (a deterministic runtime, same session), else a run.
    fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EngineError> {
        let k = self.kept();
        if let Some((seen, outputs)) = &k.last {
            if same_inputs(seen, inputs) {
                return Ok(outputs.clone());
            }
        }
        let outputs = k.model.run(inputs)?;
        k.last = Some((inputs.clone(), outputs.clone()));
        Ok(outputs)
    }

    fn log(&mut self) -> Vec<String> {
        self.kept().model.log()
    }
}

impl<M: 'static> Drop for Untapped<M> {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            // A thread being torn down has no slot left: the model just goes.
            let _ = KEPT.try_with(|slot| *slot.borrow_mut() = Some(Box::new(k)));
        }
    }
}

/// Identifies a model to a runtime: its bytes, the runtime and the options.
fn model_key(label: &str, source: ModelSource, opts: &EngineOptions) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (label, format!("{opts:?}")).hash(&mut h);
    match source {
        ModelSource::Memory(bytes) => bytes.hash(&mut h),
        ModelSource::File(path) => path.hash(&mut h),
        ModelSource::External { bytes, folder } => (bytes, folder).hash(&mut h),
    }
    h.finish()
}

fn same_inputs(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((na, ta), (nb, tb))| na == nb && ta.same_bits(tb))
}

impl<M: LoadedModel> Session for Tapped<M> {
    /// The whole graph runs at once: nothing to bridge.
    fn run_bridged(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        _bridge: &dyn Bridge,
    ) -> Result<Trace, EngineError> {
        let Some(tapped) = self.tapped.as_mut() else {
            return Err(EngineError::Failed {
                engine: self.label,
                why: "the tapped model was let go after this session's first run, for its \
                      untapped model to load: prepare the graph again to run it again"
                    .into(),
            });
        };
        let start = Instant::now();
        let values = tapped.run(inputs)?;
        let wall = start.elapsed();
        let failures = tapped.failures();
        let mut notes: Vec<String> = Vec::new();
        for line in tapped.log() {
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
        if matches!(self.plain, Plain::Later(_)) {
            self.tapped = None;
        }
        let finals: BTreeMap<String, Tensor> = self
            .final_outputs
            .iter()
            .filter_map(|name| Some((name.clone(), values.get(name)?.clone())))
            .collect();
        let nodes = node_runs(&self.nodes, &values, &failures, self.label);
        let mut trace = Trace {
            nodes,
            values: values.into_iter().collect(),
            logical: Default::default(),
            wall,
            notes,
            bridged: Default::default(),
            deployed: Default::default(),
        };
        match self.plain {
            // The tapped model is the deployed one: nothing to wait for.
            Plain::Same => trace.deployed = finals.into_iter().collect(),
            _ => self.finals = Some(finals),
        }
        Ok(trace)
    }

    /// The untapped model is still to run: the tapped one is not the
    /// deployed one and ran.
    fn settled(&self) -> bool {
        self.finals.is_none()
    }

    /// The untapped model run on `inputs` (loaded now when run once), its
    /// final outputs compared with the tapped run's.
    fn deployed(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<Option<Deployed>, EngineError> {
        let Some(finals) = self.finals.take() else {
            return Ok(None);
        };
        let (mut plain, log) = match &mut self.plain {
            Plain::Same => return Ok(None),
            Plain::Kept(plain) => (plain.run(inputs)?, plain.log()),
            Plain::Later(load) => {
                let load = load.take().ok_or_else(|| EngineError::Failed {
                    engine: self.label,
                    why: "the untapped model ran once already: prepare the graph again".into(),
                })?;
                let mut model = load()?;
                (model.run(inputs)?, model.log())
            }
        };
        let effects = tap_effects(&self.final_outputs, &finals, &plain);
        let outputs = self
            .final_outputs
            .iter()
            .filter_map(|name| Some((name.clone(), plain.remove(name)?)))
            .collect();
        Ok(Some(Deployed {
            outputs,
            effects,
            log,
        }))
    }

    fn settings(&self) -> Vec<(String, String)> {
        self.settings.clone()
    }
}

/// A [`NodeRun`] per node, from the values the runtime returned: a node ran
/// when every output came back; else it was skipped (an input came from a
/// node that did not run), unsupported (the runtime says so) or the runtime
/// failed to return a value (in its own words where `failures` has them).
fn node_runs(
    nodes: &[NodeInfo],
    values: &BTreeMap<String, Tensor>,
    failures: &BTreeMap<String, String>,
    label: &str,
) -> Vec<NodeRun> {
    // Values that did not come back, with the reason downstream nodes give.
    let mut missing: HashMap<&str, String> = HashMap::new();
    let mut runs = Vec::with_capacity(nodes.len());
    for node in nodes {
        let status = node_status(node, values, &missing, failures, label);
        let upstream = match &status {
            NodeStatus::Ran => None,
            NodeStatus::Unsupported(_) => Some(format!("upstream `{}` unsupported", node.name)),
            NodeStatus::Skipped(why) => Some(why.clone()),
            NodeStatus::Error(_) => Some(format!("upstream `{}` failed", node.name)),
        };
        if let Some(why) = upstream {
            for o in node.outputs.iter().filter(|o| !o.is_empty()) {
                missing.entry(o).or_insert_with(|| why.clone());
            }
        }
        runs.push(NodeRun {
            status,
            lowering: Some("graph".into()),
            bridged: None,
        });
    }
    runs
}

fn node_status(
    node: &NodeInfo,
    values: &BTreeMap<String, Tensor>,
    missing: &HashMap<&str, String>,
    failures: &BTreeMap<String, String>,
    label: &str,
) -> NodeStatus {
    let Some(absent) = node
        .outputs
        .iter()
        .find(|o| !o.is_empty() && !values.contains_key(*o))
    else {
        return NodeStatus::Ran;
    };
    if let Some(why) = node.inputs.iter().find_map(|i| missing.get(i.as_str())) {
        return NodeStatus::Skipped(why.clone());
    }
    match (&node.unsupported, failures.get(absent)) {
        (Some(why), _) => NodeStatus::Unsupported(why.clone()),
        (None, Some(why)) => NodeStatus::Error(why.clone()),
        (None, None) => NodeStatus::Error(format!("{label} returned no value for `{absent}`")),
    }
}

/// Notes for the final outputs whose tapped value differs from the plain run's.
fn tap_effects(
    final_outputs: &[String],
    tapped: &BTreeMap<String, Tensor>,
    plain: &BTreeMap<String, Tensor>,
) -> Vec<String> {
    final_outputs
        .iter()
        .filter_map(|name| match (tapped.get(name), plain.get(name)) {
            (Some(a), Some(b)) if !a.same_bits(b) => Some(format!(
                "tapping changed final output `{name}` by {}: exposing intermediate values disabled a fusion or changed a kernel",
                change(a, b)
            )),
            _ => None,
        })
        .collect()
}

/// How much `plain` differs from `tapped`: `max abs 1.23e-6 (2.05e-7 of max |y| 6.00e0)`,
/// three significant digits so the note is stable.
fn change(tapped: &Tensor, plain: &Tensor) -> String {
    if tapped.shape() != plain.shape() {
        return format!("shape {:?} to {:?}", tapped.shape(), plain.shape());
    }
    let (a, b) = (tapped.to_f64_vec(), plain.to_f64_vec());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (false, false) if x == y => 0.0,
            (false, false) => (x - y).abs(),
            (true, true) => 0.0,
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max);
    let scale = a.iter().map(|x| x.abs()).fold(0.0, f64::max);
    format!(
        "max abs {diff:.2e} ({:.2e} of max |y| {scale:.2e})",
        diff / scale
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::engine::NoBridge;
    use ndarray::ArrayD;

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(vec![v.len()], v.to_vec()).unwrap())
    }

    fn node(name: &str, input: &str, output: &str, unsupported: bool) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            inputs: vec![input.into()],
            outputs: vec![output.into()],
            unsupported: unsupported.then(|| format!("{name}: not here")),
        }
    }

    #[test]
    fn statuses_follow_the_values_that_came_back() {
        let nodes = [
            node("a", "x", "a", false),
            node("b", "a", "b", true),
            node("c", "b", "c", false),
            node("d", "x", "d", false),
        ];
        let values = BTreeMap::from([("a".to_string(), f32s(&[1.0]))]);
        let statuses: Vec<NodeStatus> = node_runs(&nodes, &values, &BTreeMap::new(), "RT")
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            [
                NodeStatus::Ran,
                NodeStatus::Unsupported("b: not here".into()),
                NodeStatus::Skipped("upstream `b` unsupported".into()),
                NodeStatus::Error("RT returned no value for `d`".into()),
            ]
        );
    }

    #[test]
    fn a_failure_the_runtime_explains_is_the_error_and_skips_downstream() {
        let nodes = [node("a", "x", "a", false), node("b", "a", "b", false)];
        let failures = BTreeMap::from([("a".to_string(), "Conv `a`: ValueError".to_string())]);
        let statuses: Vec<NodeStatus> = node_runs(&nodes, &BTreeMap::new(), &failures, "RT")
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            [
                NodeStatus::Error("Conv `a`: ValueError".into()),
                NodeStatus::Skipped("upstream `a` failed".into()),
            ]
        );
    }

    /// A runtime that counts its loads and returns input `x` for every
    /// output of the model it loaded.
    #[derive(Default)]
    struct Counting {
        loads: std::sync::atomic::AtomicUsize,
    }

    struct Outputs(Vec<String>);

    impl GraphRuntime for Counting {
        const LABEL: &'static str = "counting";
        type Loaded = Outputs;
        fn load(&self, model: ModelSource, _: &EngineOptions) -> Result<Outputs, EngineError> {
            self.loads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ModelSource::Memory(bytes) = model else {
                unreachable!("small models load from memory")
            };
            let g = Graph::from_bytes(bytes).expect("model");
            let _ = EVENTS.try_with(|e| e.borrow_mut().push(format!("load {}", g.outputs.len())));
            Ok(Outputs(g.outputs.iter().map(|o| o.name.clone()).collect()))
        }
        fn settings(&self, _: &EngineOptions) -> Vec<(String, String)> {
            vec![]
        }
    }

    impl LoadedModel for Outputs {
        fn run(
            &mut self,
            inputs: &BTreeMap<String, Tensor>,
        ) -> Result<BTreeMap<String, Tensor>, EngineError> {
            EVENTS.with(|e| e.borrow_mut().push(format!("run {}", self.0.len())));
            let x = &inputs["x"];
            Ok(self.0.iter().map(|o| (o.clone(), x.clone())).collect())
        }
    }

    thread_local! {
        /// What the models did, in order (`load N`, `run N`, `drop N`: N
        /// outputs), as seen from the thread they did it on.
        static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    impl Drop for Outputs {
        fn drop(&mut self) {
            let _ = EVENTS.try_with(|e| e.borrow_mut().push(format!("drop {}", self.0.len())));
        }
    }

    /// A runtime for `prepare`, which keeps it for a tapped model it loads later.
    fn counting() -> &'static Counting {
        Box::leak(Box::default())
    }

    #[test]
    fn an_untapped_model_run_once_loads_after_the_tapped_model_went() {
        let rt = counting();
        let opts = EngineOptions::default();
        let inputs = BTreeMap::from([("x".to_string(), f32s(&[1.0, 2.0]))]);
        let g = chain(&["a", "y"]);
        let events = || EVENTS.with(|e| e.borrow_mut().split_off(0));
        events();
        let mut session = prepare(rt, &g, &opts).unwrap();
        // Only the tapped model (two outputs) is loaded when prepared.
        assert_eq!(events(), ["load 2"]);
        let mut trace = session.run(&inputs).unwrap();
        // It ran and went; the trace waits for the deployed outputs.
        assert_eq!(events(), ["run 2", "drop 2"]);
        assert!(trace.deployed.is_empty());
        let deployed = session.deployed(&inputs).unwrap().expect("deployed");
        assert_eq!(events(), ["load 1", "run 1", "drop 1"]);
        trace.settle(deployed);
        assert!(trace.deployed["y"].same_bits(&inputs["x"]));
        // Run again, the session has neither model: it says so.
        let err = session.run(&inputs).unwrap_err().to_string();
        assert!(err.contains("prepare the graph again"), "{err}");
        drop(session);
        // The same model again: its untapped model is kept for the next
        // variant, so both stay and run again when asked.
        let mut session = prepare(rt, &g, &opts).unwrap();
        events();
        let again = BTreeMap::from([("x".to_string(), f32s(&[3.0, 4.0]))]);
        for x in [&inputs, &again] {
            let trace = session.run_settled(x, &NoBridge).unwrap();
            assert!(trace.deployed["y"].same_bits(&x["x"]));
        }
        assert_eq!(events(), ["run 2", "run 1", "run 2", "run 1"]);
    }

    /// `x -> Identity -> ... -> y`, one node per output name in `chain`.
    fn chain(chain: &[&str]) -> Graph {
        use crate::onnx;
        let vi = |n: &str| onnx::ValueInfoProto {
            name: n.into(),
            ..Default::default()
        };
        let mut prev = "x";
        let node = chain
            .iter()
            .map(|o| {
                let n = onnx::NodeProto {
                    op_type: "Identity".into(),
                    name: format!("n_{o}"),
                    input: vec![prev.into()],
                    output: vec![o.to_string()],
                    ..Default::default()
                };
                prev = o;
                n
            })
            .collect();
        let graph = onnx::GraphProto {
            name: "t".into(),
            node,
            input: vec![vi("x")],
            output: vec![vi(prev)],
            ..Default::default()
        };
        Graph::from_model(onnx::ModelProto::of_graph(graph, 13)).expect("valid test graph")
    }

    #[test]
    fn the_untapped_model_loads_once_per_model_and_not_for_one_node() {
        let rt = counting();
        let opts = EngineOptions::default();
        let inputs = BTreeMap::from([("x".to_string(), f32s(&[1.0, 2.0]))]);
        let run = |g: &Graph| {
            let before = rt.loads.load(std::sync::atomic::Ordering::Relaxed);
            let trace = prepare(rt, g, &opts)
                .unwrap()
                .run_settled(&inputs, &NoBridge)
                .unwrap();
            assert!(trace.deployed.contains_key("y"), "{:?}", trace.deployed);
            rt.loads.load(std::sync::atomic::Ordering::Relaxed) - before
        };
        let two = chain(&["a", "y"]);
        // The first two variants in a row: tapped and untapped (a model run
        // once keeps nothing); the next ones: tapped only.
        assert_eq!(run(&two), 2);
        assert_eq!(run(&two), 2);
        assert_eq!(run(&two), 1);
        assert_eq!(run(&two), 1);
        // Another model: its own untapped session.
        let three = chain(&["a", "b", "y"]);
        assert_eq!(run(&three), 2);
        assert_eq!(run(&three), 2);
        // Other options: another session too.
        let opts = EngineOptions {
            threads: 1,
            ..EngineOptions::default()
        };
        let before = rt.loads.load(std::sync::atomic::Ordering::Relaxed);
        prepare(rt, &three, &opts)
            .unwrap()
            .run_settled(&inputs, &NoBridge)
            .unwrap();
        assert_eq!(
            rt.loads.load(std::sync::atomic::Ordering::Relaxed) - before,
            2
        );
        // One node: its tapped model is the model, nothing else to load.
        assert_eq!(run(&chain(&["y"])), 1);
    }

    #[test]
    fn the_tapped_bytes_parse_as_the_tapped_model_and_start_with_the_model() {
        let g = chain(&["a", "b", "y"]);
        let taps = tap_outputs(&g);
        let names: Vec<&str> = taps.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let bytes = tapped_bytes(&g, &taps, PROTOBUF_LIMIT).expect("under the limit");
        let parsed = crate::onnx::decode_model(&bytes).unwrap();
        assert_eq!(parsed, tapped_model(&g, taps.clone()));
        let plain = prost::Message::encoded_len(&*g.model);
        assert_eq!(bytes[..plain], g.to_bytes());
        assert_eq!(tapped_bytes(&g, &taps, bytes.len() - 1), None);
    }

    #[test]
    fn same_bits_tells_signed_zeros_apart_and_nans_alike() {
        assert!(f32s(&[1.0, f32::NAN]).same_bits(&f32s(&[1.0, f32::NAN])));
        assert!(!f32s(&[0.0]).same_bits(&f32s(&[-0.0])));
        assert!(!f32s(&[1.0]).same_bits(&f32s(&[1.0, 1.0])));
    }

    #[test]
    fn a_changed_final_output_is_noted_and_a_missing_one_is_not() {
        let outs = ["y".to_string(), "z".to_string()];
        let tapped = BTreeMap::from([("y".to_string(), f32s(&[1.0]))]);
        let plain = BTreeMap::from([("y".to_string(), f32s(&[1.5]))]);
        let notes = tap_effects(&outs, &tapped, &plain);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with(
                "tapping changed final output `y` by max abs 5.00e-1 (5.00e-1 of max |y| 1.00e0)"
            ),
            "{}",
            notes[0]
        );
        assert!(tap_effects(&outs, &tapped, &tapped).is_empty());
    }
}
