//! ONNX Runtime backend (`ort` 2.0.0-rc.15, `load-dynamic`, ORT 1.31.1 from PyPI).
//!
//! ORT runs the whole graph in one session; the tapping that shows every
//! node's output is [`graph_runtime`](super::graph_runtime)'s. This file holds
//! only the ORT calls: the environment, session options (the optimization
//! level is a case option and is reported with the run), and tensor
//! conversion, and ORT's log: each session logs through its own logger into
//! the lane's notes (warnings and errors, without colour codes), and the
//! environment's own messages join the notes of the next session, so
//! nothing ORT says reaches stderr.
//!
//! Threads are set, not left to ORT: `EngineOptions::cpu_threads` intra-op
//! threads that never spin between runs (ORT's default spins, stealing the
//! cores of the lanes that run next), and one inter-op thread (the graph
//! runs sequentially). They come from one pool the environment holds for
//! the whole process, not a pool per session: starting and joining a
//! session's own threads cost more than the rest of creating it for a
//! one-node graph (see [`shared_threads`]). `settings` reports what was
//! set, with the CPU memory arena, which is off (see [`CPU_ARENA`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::ArrayD;
use ort::environment::GlobalThreadPoolOptions;
use ort::logging::{LogLevel, LoggerFunction};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session as OrtSession;
use ort::value::{DynValue, TensorElementType, ValueType};

use super::engine::{Engine, EngineError, Session};
use super::graph_runtime::{self, GraphRuntime, LoadedModel, ModelSource};
use crate::graph::Graph;
use crate::options::{Device, EngineOptions, OptLevel};
use crate::tensor::Tensor;

const NAME: &str = "ort";

/// Inter-op threads: the graph runs sequentially, node after node.
const INTER_OP_THREADS: usize = 1;

/// Whether the CPU execution provider allocates through its memory arena.
/// It does not: a tapped run returns every node's output, and with the arena
/// their memory (66 MB on swin_t) stayed with ORT after each was copied out,
/// so the lane held every value twice; without it the copied output's memory
/// is freed at once. The arena only pools allocations (the kernels and their
/// results are the same); the tapped run was no slower without it (swin_t:
/// 130–186 → 98–125 ms) and the ORT worker's peak RSS fell 407 → 340 MB.
const CPU_ARENA: bool = false;

/// The ONNX Runtime engine.
pub struct OrtEngine;

/// The intra-op threads of the pool the environment shares between
/// sessions: the default `cpu_threads` (one per core). A session asked for
/// another count gets a pool of its own. A session with its own pool of two
/// threads took 1.8 ms to create for a one-node Resize, against 0.35 ms
/// with one thread (ORT 1.31.1, this 2-core machine): `cases/resize.toml`
/// creates one session per variant.
fn shared_threads() -> usize {
    EngineOptions::default().cpu_threads()
}

/// Whether a session of `opts` runs on the environment's shared pool.
fn on_shared_pool(opts: &EngineOptions) -> bool {
    opts.cpu_threads() == shared_threads()
}

fn environment() -> Result<&'static ort::environment::Environment, EngineError> {
    static ENV: OnceLock<Result<ort::environment::Environment, EngineError>> = OnceLock::new();
    ENV.get_or_init(|| {
        let missing = |why: String| EngineError::Missing { engine: NAME, why };
        let lib = crate::runtimes::ort_library().map_err(|e| missing(e.to_string()))?;
        let builder =
            ort::init_from(&lib).map_err(|e| missing(format!("loading {}: {e}", lib.display())))?;
        let pool = GlobalThreadPoolOptions::default()
            .with_intra_threads(shared_threads())
            .and_then(|p| p.with_inter_threads(INTER_OP_THREADS))
            .and_then(|p| p.with_spin_control(false))
            .map_err(|e| missing(e.to_string()))?;
        builder
            .with_name("xdiff")
            .with_logger(env_log().logger())
            .with_global_thread_pool(pool)
            .build()
            .map_err(|e| missing(e.to_string()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// What ORT logged for one session (or for the environment): warnings and
/// errors as note lines, in order.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// A logger that keeps warnings and errors here, without colour codes.
    fn logger(&self) -> LoggerFunction {
        let lines = Arc::clone(&self.0);
        Arc::new(move |level, _category, _id, _location, message| {
            if level < LogLevel::Warning {
                return;
            }
            let line = format!("ORT {}: {}", level_name(level), plain(message));
            lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        })
    }

    /// The lines logged so far, emptying the log.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Messages of the environment, not of a session.
fn env_log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(Log::default)
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Verbose => "verbose",
        LogLevel::Info => "info",
        LogLevel::Warning => "warning",
        LogLevel::Error => "error",
        LogLevel::Fatal => "fatal",
    }
}

/// `message` without ANSI escape sequences (`ESC [ ... letter`), trimmed.
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out.trim().to_string()
}

fn failed(why: impl std::fmt::Display) -> EngineError {
    EngineError::Failed {
        engine: NAME,
        why: why.to_string(),
    }
}

fn level(l: OptLevel) -> GraphOptimizationLevel {
    match l {
        OptLevel::Disable => GraphOptimizationLevel::Disable,
        OptLevel::Basic => GraphOptimizationLevel::Level1,
        OptLevel::Extended => GraphOptimizationLevel::Level2,
        OptLevel::All => GraphOptimizationLevel::All,
    }
}

/// How `settings` names where a session's threads come from.
fn pool_name(opts: &EngineOptions) -> &'static str {
    if on_shared_pool(opts) {
        "shared by the lane's sessions"
    } else {
        "the session's own"
    }
}

/// A loaded ORT session and what ORT logs for it.
pub struct OrtModel {
    session: OrtSession,
    log: Log,
}

fn session(model: ModelSource, opts: &EngineOptions) -> Result<OrtModel, EngineError> {
    let env = environment()?;
    let log = Log::default();
    let mut b = OrtSession::builder(env)
        .map_err(failed)?
        .with_logger(log.logger())
        .map_err(failed)?
        .with_log_level(LogLevel::Warning)
        .map_err(failed)?
        .with_optimization_level(level(opts.ort_optimization))
        .map_err(failed)?;
    if !on_shared_pool(opts) {
        b = b
            .with_independent_thread_pool()
            .map_err(failed)?
            .with_intra_threads(opts.cpu_threads())
            .map_err(failed)?
            .with_intra_op_spinning(false)
            .map_err(failed)?
            .with_inter_threads(INTER_OP_THREADS)
            .map_err(failed)?
            .with_inter_op_spinning(false)
            .map_err(failed)?;
    }
    if opts.device == Device::Cpu {
        let cpu = ort::ep::CPU::default().with_arena_allocator(CPU_ARENA);
        b = b.with_execution_providers([cpu.build()]).map_err(failed)?;
    }
    if let Device::Cuda(n) = opts.device {
        let mut cuda = ort::ep::CUDA::default().with_device_id(n as i32);
        if let Some(tf32) = opts.tf32 {
            cuda = cuda.with_tf32(tf32);
        }
        b = b
            .with_execution_providers([cuda.build().error_on_failure()])
            .map_err(|e| EngineError::Device {
                engine: NAME,
                device: opts.device,
                why: format!(
                    "CUDA execution provider unavailable (needs onnxruntime-gpu {}): {e}",
                    crate::runtimes::ORT_VERSION
                ),
            })?;
    }
    let session = match model {
        ModelSource::Memory(bytes) => b.commit_from_memory(bytes),
        ModelSource::File(path) => b.commit_from_file(path),
        // ORT maps the weights from their files in `folder`.
        ModelSource::External { bytes, folder } => b
            .with_config_entry(
                "session.model_external_initializers_file_folder_path",
                folder.to_string_lossy(),
            )
            .map_err(failed)?
            .commit_from_memory(bytes),
    }
    .map_err(|e| failed(format!("session creation failed: {e}")))?;
    Ok(OrtModel { session, log })
}

impl GraphRuntime for OrtEngine {
    const LABEL: &'static str = "ORT";
    const READS_EXTERNAL_DATA: bool = true;
    type Loaded = OrtModel;

    fn load(&self, model: ModelSource, opts: &EngineOptions) -> Result<OrtModel, EngineError> {
        session(model, opts)
    }

    fn settings(&self, opts: &EngineOptions) -> Vec<(String, String)> {
        let mut st = vec![
            ("device".into(), opts.device.to_string()),
            (
                "graph_optimization".into(),
                opts.ort_optimization.name().into(),
            ),
            ("onnxruntime".into(), crate::runtimes::ORT_VERSION.into()),
            ("threads".into(), opts.cpu_threads().to_string()),
            ("inter-op threads".into(), INTER_OP_THREADS.to_string()),
            ("thread pool".into(), pool_name(opts).into()),
            ("spinning".into(), "off (intra-op and inter-op)".into()),
        ];
        if opts.device == Device::Cpu {
            let arena = if CPU_ARENA { "on" } else { "off" };
            st.push(("cpu memory arena".into(), arena.into()));
        }
        st
    }
}

impl Engine for OrtEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Loads the ORT library and creates the environment (and its threads).
    fn warm(&self) {
        let _ = environment();
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        graph_runtime::prepare(&OrtEngine, graph, opts)
    }

    fn weights(&self) -> crate::graph::Weights {
        crate::graph::Weights::AsFiled
    }
}

/// Why a tensor could not cross between xdiff and ORT.
#[derive(Debug, thiserror::Error)]
enum ConvertError {
    #[error("{0}")]
    Ort(#[from] ort::Error),
    #[error("non-tensor output {0:?}")]
    NotTensor(Box<ValueType>),
    #[error("unsupported output type {0:?}")]
    ElementType(TensorElementType),
}

fn to_ort(t: &Tensor) -> Result<DynValue, ConvertError> {
    fn v<T: Clone + ort::value::PrimitiveTensorElementType + std::fmt::Debug + 'static>(
        a: &ArrayD<T>,
    ) -> Result<DynValue, ConvertError> {
        Ok(ort::value::Tensor::from_array(a.as_standard_layout().into_owned())?.into_dyn())
    }
    crate::with_array!(t, a => v(a))
}

fn from_ort(value: &DynValue) -> Result<Tensor, ConvertError> {
    fn x<T: ort::value::PrimitiveTensorElementType + Clone + 'static>(
        value: &DynValue,
    ) -> Result<ArrayD<T>, ConvertError> {
        Ok(value.try_extract_array::<T>()?.to_owned())
    }
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => return Err(ConvertError::NotTensor(Box::new(other.clone()))),
    };
    Ok(match ty {
        TensorElementType::Float32 => Tensor::F32(x(value)?),
        TensorElementType::Float64 => Tensor::F64(x(value)?),
        TensorElementType::Float16 => Tensor::F16(x(value)?),
        TensorElementType::Bfloat16 => Tensor::BF16(x(value)?),
        TensorElementType::Int8 => Tensor::I8(x(value)?),
        TensorElementType::Int16 => Tensor::I16(x(value)?),
        TensorElementType::Int32 => Tensor::I32(x(value)?),
        TensorElementType::Int64 => Tensor::I64(x(value)?),
        TensorElementType::Uint8 => Tensor::U8(x(value)?),
        TensorElementType::Uint16 => Tensor::U16(x(value)?),
        TensorElementType::Uint32 => Tensor::U32(x(value)?),
        TensorElementType::Uint64 => Tensor::U64(x(value)?),
        TensorElementType::Bool => Tensor::Bool(x(value)?),
        other => return Err(ConvertError::ElementType(other)),
    })
}

impl LoadedModel for OrtModel {
    fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EngineError> {
        let mut feed: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (name, t) in inputs {
            let v = to_ort(t).map_err(|e| EngineError::Input {
                name: name.clone(),
                why: e.to_string(),
            })?;
            feed.push((name.clone(), v));
        }
        let outputs = self
            .session
            .run(feed)
            .map_err(|e| failed(format!("run failed: {e}")))?;
        let mut host = BTreeMap::new();
        // Each output is let go once copied: without the arena its memory
        // goes back at once, and the run never holds every value twice.
        for (name, value) in outputs {
            let t = from_ort(&value).map_err(|e| failed(format!("output `{name}`: {e}")))?;
            drop(value);
            host.insert(name.to_string(), t);
        }
        Ok(host)
    }

    fn log(&mut self) -> Vec<String> {
        let mut lines = env_log().take();
        lines.extend(self.log.take());
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Dim;
    use crate::tensor::DType;

    #[test]
    fn a_model_loaded_from_files_runs_as_from_memory() {
        // The route a model past protobuf's 2 GiB limit takes (weights moved
        // to a side file, both models loaded from files), forced with a
        // limit of 0 on torch's external-data fixture: every value the same.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cases/models/torch_external/model.onnx"
        );
        let graph = Graph::load(std::path::Path::new(path)).expect("fixture");
        let inputs: BTreeMap<String, Tensor> = graph
            .inputs
            .iter()
            .map(|v| {
                let shape: Vec<usize> = v
                    .shape
                    .iter()
                    .flatten()
                    .map(|d| match d {
                        Dim::Fixed(n) => *n,
                        _ => 1,
                    })
                    .collect();
                let n: usize = shape.iter().product();
                let dtype = v.dtype.unwrap_or(DType::F32);
                // Floats a ramp through sin; integers (token ids) 0 and 1.
                let vals: Vec<f64> = (0..n)
                    .map(|i| {
                        if dtype.is_float() {
                            (i as f64 * 0.7).sin()
                        } else {
                            (i % 2) as f64
                        }
                    })
                    .collect();
                (v.name.clone(), Tensor::from_f64(dtype, &shape, &vals))
            })
            .collect();
        let opts = EngineOptions::default();
        let bridge = crate::backend::engine::NoBridge;
        let memory = graph_runtime::prepare(&OrtEngine, &graph, &opts)
            .unwrap()
            .run_settled(&inputs, &bridge)
            .unwrap();
        // From files, the untapped model loads after the tapped run, from
        // the folder its load then lets go.
        let files = graph_runtime::prepare_within(&OrtEngine, &graph, &opts, 0)
            .unwrap()
            .run_settled(&inputs, &bridge)
            .unwrap();
        assert!(
            memory.values.len() > graph.nodes.len() / 2,
            "{:?}",
            memory.values.keys()
        );
        assert_eq!(memory.values, files.values);
        assert!(!files.deployed.is_empty());
        assert_eq!(memory.deployed, files.deployed);
    }

    /// Conv then BatchNormalization: ORT folds the normalization into the
    /// convolution's weights unless the convolution's output is a graph
    /// output, so tapping changes the final output's rounding.
    const CONV_BN: &str = r#"
name = "conv-bn"
seed = 3
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [1, 8, 16, 16] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "W"
shape = [8, 8, 3, 3]
dist = "normal"
std = 0.3
[[model.graph.initializers]]
name = "scale"
shape = [8]
values = [1.7, 0.3, 2.9, 0.61, 1.13, 0.77, 3.3, 0.21]
[[model.graph.initializers]]
name = "bias"
shape = [8]
values = [0.1, -0.2, 0.05, 0.3, -0.7, 0.0, 1.1, -0.4]
[[model.graph.initializers]]
name = "mean"
shape = [8]
values = [0.13, -0.27, 0.41, 0.9, -1.3, 0.07, 0.33, -0.5]
[[model.graph.initializers]]
name = "var"
shape = [8]
values = [0.7, 1.9, 0.31, 2.3, 0.17, 1.1, 0.09, 3.7]
[[model.graph.nodes]]
name = "conv"
op = "Conv"
inputs = ["X", "W"]
outputs = ["c"]
attrs = { pads = [1, 1, 1, 1] }
[[model.graph.nodes]]
name = "bn"
op = "BatchNormalization"
inputs = ["c", "scale", "bias", "mean", "var"]
outputs = ["Y"]
"#;

    /// The case that `text` (a case file's text) holds.
    fn case_of(text: &str) -> crate::case::Case {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.toml");
        std::fs::write(&path, text).unwrap();
        crate::case::load(&path).unwrap().remove(0)
    }

    #[test]
    fn tapping_that_blocks_a_fusion_is_still_found() {
        let case = case_of(CONV_BN);
        let trace = OrtEngine
            .prepare(&case.graph, &case.options)
            .unwrap()
            .run_settled(&case.inputs, &crate::backend::engine::NoBridge)
            .unwrap();
        assert!(
            trace
                .notes
                .iter()
                .any(|n| n.starts_with("tapping changed final output `Y` by max abs")),
            "{:?}",
            trace.notes
        );
        assert!(!trace.deployed["Y"].same_bits(&trace.values["Y"]));
    }

    #[test]
    fn settings_say_the_threads_and_that_nothing_spins() {
        let st: BTreeMap<_, _> = OrtEngine
            .settings(&EngineOptions {
                threads: 3,
                ..EngineOptions::default()
            })
            .into_iter()
            .collect();
        assert_eq!(st["threads"], "3");
        assert_eq!(st["inter-op threads"], "1");
        assert_eq!(st["spinning"], "off (intra-op and inter-op)");
        assert_eq!(st["cpu memory arena"], "off");
    }

    /// A trace is settled (the worker sends nothing after it) exactly when
    /// the tapped model is the deployed one: here when every node's output
    /// is a graph output already; with Conv→BatchNorm tapped, the untapped
    /// model is still to run until `deployed` ran it.
    #[test]
    fn a_trace_is_settled_when_the_tapped_model_is_the_deployed_one() {
        for (outputs, settled) in [(r#"["Y"]"#, false), (r#"["c", "Y"]"#, true)] {
            // The graph's outputs (the first such line; the nodes' follow).
            let text = CONV_BN.replacen(r#"outputs = ["Y"]"#, &format!("outputs = {outputs}"), 1);
            let case = case_of(&text);
            let mut session = OrtEngine.prepare(&case.graph, &case.options).unwrap();
            let trace = session
                .run_bridged(&case.inputs, &crate::backend::engine::NoBridge)
                .unwrap();
            assert_eq!(session.settled(), settled, "outputs {outputs}");
            let deployed = session.deployed(&case.inputs).unwrap();
            assert_eq!(deployed.is_none(), settled, "outputs {outputs}");
            assert_eq!(trace.deployed.contains_key("Y"), settled);
            assert!(session.settled(), "deployed ran: nothing left to send");
        }
    }

    /// The default thread count runs on the environment's shared pool; any
    /// other count on a pool of the session's own; both run the graph to
    /// the same values, and say which pool they used.
    #[test]
    fn sessions_share_the_pool_unless_asked_for_another_thread_count() {
        let case = case_of(CONV_BN);
        let own = EngineOptions {
            threads: shared_threads() + 1,
            ..case.options.clone()
        };
        let mut runs = vec![];
        for (opts, pool) in [
            (&case.options, "shared by the lane's sessions"),
            (&own, "the session's own"),
        ] {
            let mut session = OrtEngine.prepare(&case.graph, opts).unwrap();
            assert_eq!(
                session
                    .settings()
                    .into_iter()
                    .find(|(k, _)| k == "thread pool"),
                Some(("thread pool".to_string(), pool.to_string()))
            );
            let trace = session
                .run_settled(&case.inputs, &crate::backend::engine::NoBridge)
                .unwrap();
            runs.push(trace.values["Y"].clone());
        }
        assert!(runs[0].same_bits(&runs[1]));
    }

    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(
            plain("\u{1b}[1;31m2026 [W:onnxruntime] Removing initializer\u{1b}[m\n"),
            "2026 [W:onnxruntime] Removing initializer"
        );
        assert_eq!(plain("no codes"), "no codes");
    }
}
