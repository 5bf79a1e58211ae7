//! A test-only whole-graph runtime (cargo feature `identity-backend`): it
//! runs Identity nodes by copying their input and runs nothing else, so every
//! other node is reported unsupported.
//!
//! It exists to prove that a backend is its own file, one row in
//! [`BACKENDS`](super::BACKENDS) and one cargo feature: tapping, the untapped
//! run and the per-node statuses are all [`graph_runtime`](super::graph_runtime)'s.

use std::collections::BTreeMap;

use super::engine::{Engine, EngineError, Session};
use super::graph_runtime::{self, GraphRuntime, LoadedModel, ModelSource};
use crate::graph::{Graph, Node};
use crate::options::{Device, EngineOptions};
use crate::tensor::Tensor;

const NAME: &str = "identity";

/// The identity engine.
pub struct IdentityEngine;

/// A model "loaded" by the identity runtime: the graph itself.
pub struct Loaded(Graph);

impl GraphRuntime for IdentityEngine {
    const LABEL: &'static str = NAME;
    type Loaded = Loaded;

    fn load(&self, model: ModelSource, opts: &EngineOptions) -> Result<Loaded, EngineError> {
        if opts.device != Device::Cpu {
            return Err(EngineError::Device {
                engine: NAME,
                device: opts.device,
                why: "the identity backend runs on the host only".into(),
            });
        }
        let graph = match model {
            ModelSource::Memory(bytes) => Graph::from_bytes(bytes),
            ModelSource::File(path) => Graph::load(path),
            ModelSource::External { bytes, folder } => Graph::from_bytes_in(bytes, folder),
        };
        let graph = graph.map_err(|e| EngineError::Failed {
            engine: NAME,
            why: e.to_string(),
        })?;
        Ok(Loaded(graph))
    }

    fn settings(&self, opts: &EngineOptions) -> Vec<(String, String)> {
        vec![("device".into(), opts.device.to_string())]
    }

    fn unsupported(&self, node: &Node) -> Option<String> {
        (node.op_type != "Identity").then(|| {
            format!(
                "{}: the identity backend runs only Identity nodes",
                node.op_type
            )
        })
    }
}

impl LoadedModel for Loaded {
    /// Copies each Identity node's input to its output, in graph order, and
    /// returns the graph outputs it has values for.
    fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EngineError> {
        let graph = &self.0;
        let mut values: BTreeMap<String, Tensor> = graph
            .initializers
            .iter()
            .chain(inputs)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for node in graph.nodes.iter().filter(|n| n.op_type == "Identity") {
            if let (Some(x), Some(y)) = (node.inputs.first(), node.outputs.first()) {
                if let Some(v) = values.get(x).cloned() {
                    values.insert(y.clone(), v);
                }
            }
        }
        let outputs = graph.outputs.iter().map(|o| &o.name);
        Ok(outputs
            .filter_map(|o| values.get(o).map(|v| (o.clone(), v.clone())))
            .collect())
    }
}

impl Engine for IdentityEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        graph_runtime::prepare(&IdentityEngine, graph, opts)
    }
}
