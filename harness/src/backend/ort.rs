//! ONNX Runtime backend (`ort` 2.0.0-rc.15, `load-dynamic`, ORT 1.31.1 from PyPI).
//!
//! ORT runs the whole graph in one session, so to see every node's output the
//! model is "tapped": each node output becomes a graph output. Exposing values
//! can block fusions, so the untapped model is run too and any change in the
//! final outputs is reported as a note. The optimization level is a case
//! option and is reported with the run.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use ndarray::ArrayD;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session as OrtSession;
use ort::value::{DynValue, TensorElementType, ValueType};

use super::{
    Device, Engine, EngineError, EngineOptions, NodeRun, NodeStatus, OptLevel, Session, Trace,
};
use crate::graph::Graph;
use crate::onnx::ValueInfoProto;
use crate::tensor::Tensor;

const NAME: &str = "ort";

/// The ONNX Runtime engine.
pub struct OrtEngine;

fn environment() -> Result<&'static ort::environment::Environment, EngineError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = crate::runtimes::ort_library()?;
        let builder =
            ort::init_from(&lib).map_err(|e| format!("loading {}: {e}", lib.display()))?;
        builder
            .with_name("xdiff")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|why| EngineError::Missing {
        engine: NAME,
        why: why.clone(),
    })
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

fn session(model: &[u8], opts: &EngineOptions) -> Result<OrtSession, EngineError> {
    let env = environment()?;
    let mut b = OrtSession::builder(env)
        .map_err(failed)?
        .with_optimization_level(level(opts.ort_optimization))
        .map_err(failed)?;
    if opts.threads > 0 {
        b = b.with_intra_threads(opts.threads).map_err(failed)?;
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
    b.commit_from_memory(model)
        .map_err(|e| failed(format!("session creation failed: {e}")))
}

/// The model with every node output added as a graph output.
fn tapped(graph: &Graph) -> Vec<u8> {
    let mut model = graph.model.clone();
    let g = model.graph.as_mut().expect("validated graph");
    let existing: std::collections::HashSet<String> =
        g.output.iter().map(|o| o.name.clone()).collect();
    for node in &graph.nodes {
        for o in node
            .outputs
            .iter()
            .filter(|o| !o.is_empty() && !existing.contains(*o))
        {
            let typed = g.value_info.iter().find(|v| &v.name == o).cloned();
            g.output.push(typed.unwrap_or_else(|| ValueInfoProto {
                name: o.clone(),
                ..Default::default()
            }));
        }
    }
    prost::Message::encode_to_vec(&model)
}

struct Prepared {
    tapped: OrtSession,
    plain: OrtSession,
    nodes: usize,
    final_outputs: Vec<String>,
    node_outputs: Vec<Vec<String>>,
    settings: Vec<(String, String)>,
}

impl Engine for OrtEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        let tapped_session = session(&tapped(graph), opts)?;
        let plain = session(&graph.to_bytes(), opts)?;
        let settings = vec![
            ("device".into(), opts.device.to_string()),
            (
                "graph_optimization".into(),
                opts.ort_optimization.name().into(),
            ),
            ("onnxruntime".into(), crate::runtimes::ORT_VERSION.into()),
            (
                "threads".into(),
                if opts.threads == 0 {
                    "default".into()
                } else {
                    opts.threads.to_string()
                },
            ),
        ];
        Ok(Box::new(Prepared {
            tapped: tapped_session,
            plain,
            nodes: graph.nodes.len(),
            final_outputs: graph.outputs.iter().map(|o| o.name.clone()).collect(),
            node_outputs: graph.nodes.iter().map(|n| n.outputs.clone()).collect(),
            settings,
        }))
    }
}

fn to_ort(t: &Tensor) -> Result<DynValue, String> {
    fn v<T: Clone + ort::value::PrimitiveTensorElementType + std::fmt::Debug + 'static>(
        a: &ArrayD<T>,
    ) -> Result<DynValue, String> {
        ort::value::Tensor::from_array(a.as_standard_layout().into_owned())
            .map(|t| t.into_dyn())
            .map_err(|e| e.to_string())
    }
    crate::with_array!(t, a => v(a))
}

fn from_ort(value: &DynValue) -> Result<Tensor, String> {
    fn x<T: ort::value::PrimitiveTensorElementType + Clone + 'static>(
        value: &DynValue,
    ) -> Result<ArrayD<T>, String> {
        value
            .try_extract_array::<T>()
            .map(|a| a.to_owned())
            .map_err(|e| e.to_string())
    }
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => return Err(format!("non-tensor output {other:?}")),
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
        other => return Err(format!("unsupported output type {other:?}")),
    })
}

fn run_session(
    s: &mut OrtSession,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, EngineError> {
    let mut feed: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
    for (name, t) in inputs {
        let v = to_ort(t).map_err(|why| EngineError::Input {
            name: name.clone(),
            why,
        })?;
        feed.push((name.clone(), v));
    }
    let outputs = s
        .run(feed)
        .map_err(|e| failed(format!("run failed: {e}")))?;
    let mut host = BTreeMap::new();
    for (name, value) in outputs.iter() {
        let t = from_ort(&value).map_err(|why| failed(format!("output `{name}`: {why}")))?;
        host.insert(name.to_string(), t);
    }
    Ok(host)
}

/// Bitwise equality (NaN == NaN) for the tapped-vs-plain check.
fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return false;
    }
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    x.iter()
        .zip(&y)
        .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
}

impl Session for Prepared {
    fn run(&mut self, inputs: &BTreeMap<String, Tensor>) -> Result<Trace, EngineError> {
        let start = Instant::now();
        let values = run_session(&mut self.tapped, inputs)?;
        let wall = start.elapsed();
        let plain = run_session(&mut self.plain, inputs)?;
        let mut notes = Vec::new();
        for name in &self.final_outputs {
            if let (Some(a), Some(b)) = (values.get(name), plain.get(name)) {
                if !same_bits(a, b) {
                    notes.push(format!(
                        "tapping changed final output `{name}`: exposing intermediate values disabled a fusion or changed a kernel"
                    ));
                }
            }
        }
        let nodes = (0..self.nodes)
            .map(|i| {
                let missing = self.node_outputs[i]
                    .iter()
                    .find(|o| !o.is_empty() && !values.contains_key(*o));
                NodeRun {
                    status: match missing {
                        None => NodeStatus::Ran,
                        Some(o) => NodeStatus::Error(format!("ORT returned no value for `{o}`")),
                    },
                    lowering: Some("graph".into()),
                }
            })
            .collect();
        Ok(Trace {
            nodes,
            values: values.into_iter().collect(),
            logical: Default::default(),
            wall,
            notes,
        })
    }

    fn settings(&self) -> Vec<(String, String)> {
        self.settings.clone()
    }
}
