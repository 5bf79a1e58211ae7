//! The `onnx-ref` lane: ONNX's own Python reference
//! (`onnx.reference.ReferenceEvaluator`, from the runtimes venv's `onnx`),
//! so that where xdiff's float64 reference and the spec's Python one
//! disagree, the disagreement is measured at the node like any lane's.
//!
//! It is a whole-graph runtime over [`graph_runtime`](super::graph_runtime):
//! the tapped model (every node output a graph output) and the inputs go as
//! TensorProto files into a temporary folder, one Python process
//! (`harness/py/onnx_ref_lane.py`, embedded in the binary) evaluates the
//! nodes in order and writes every value back. A node that raises is an
//! `error` naming the node in ReferenceEvaluator's words; the rest go on.
//! Evaluating node by node, tapping changes nothing, so the untapped model is
//! not run. Not in the default lanes (it is slow): `--backends onnx-ref,...`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::engine::{Engine, EngineError, Session};
use super::graph_runtime::{self, GraphRuntime, LoadedModel, ModelSource};
use crate::graph::Graph;
use crate::onnx::decode_tensor;
use crate::options::{Device, EngineOptions};
use crate::tensor::Tensor;

const NAME: &str = "onnx-ref";

/// The evaluation script, written next to each model.
const SCRIPT: &str = include_str!("../../py/onnx_ref_lane.py");

/// The ONNX reference engine.
pub struct OnnxRefEngine;

/// The Python that runs the lane and the `onnx` version it imports.
#[derive(Debug, Clone)]
struct Python {
    path: PathBuf,
    onnx: String,
}

fn missing(why: impl std::fmt::Display) -> EngineError {
    EngineError::Missing {
        engine: NAME,
        why: why.to_string(),
    }
}

fn failed(why: impl std::fmt::Display) -> EngineError {
    EngineError::Failed {
        engine: NAME,
        why: why.to_string(),
    }
}

/// The runtimes venv's Python (`$XDIFF_PYTHON`), checked once to import `onnx`.
fn python() -> Result<&'static Python, EngineError> {
    static PYTHON: OnceLock<Result<Python, EngineError>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let path = crate::runtimes::python().ok_or_else(|| {
                missing(format!(
                    "no Python with onnx (looked for the runtimes venv in {}); install it with: {}",
                    crate::runtimes::runtimes_dir().display(),
                    crate::runtimes::INSTALL_HINT
                ))
            })?;
            let out = Command::new(&path)
                .args([
                    "-c",
                    "import onnx.reference, numpy; print(onnx.__version__)",
                ])
                .output()
                .map_err(|e| missing(format!("running {}: {e}", path.display())))?;
            if !out.status.success() {
                return Err(missing(format!(
                    "{} cannot import onnx.reference: {}",
                    path.display(),
                    last_line(&out.stderr)
                )));
            }
            let onnx = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok(Python { path, onnx })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The last non-empty line of a process's output (a Python traceback's
/// exception line).
fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

/// A model written out for the Python reference: `model.onnx` (and its
/// external data) and the script, in a folder that lives as long as this.
pub struct Loaded {
    dir: tempfile::TempDir,
    python: &'static Python,
    failures: BTreeMap<String, String>,
}

impl Loaded {
    fn write(model: ModelSource) -> Result<Loaded, EngineError> {
        let python = python()?;
        let dir = tempfile::tempdir().map_err(|e| failed(format!("temporary folder: {e}")))?;
        let io =
            |e: std::io::Error| failed(format!("writing the model for the ONNX reference: {e}"));
        match model {
            ModelSource::Memory(bytes) => std::fs::write(dir.path().join("model.onnx"), bytes),
            ModelSource::File(path) => copy_with_external_data(path, dir.path()),
            // Not asked for: this runtime does not read external data from
            // a folder (`GraphRuntime::READS_EXTERNAL_DATA`).
            ModelSource::External { .. } => Err(std::io::Error::other(
                "the ONNX reference lane takes no model whose weights stay in another folder",
            )),
        }
        .map_err(io)?;
        std::fs::write(dir.path().join("onnx_ref_lane.py"), SCRIPT).map_err(io)?;
        Ok(Loaded {
            dir,
            python,
            failures: BTreeMap::new(),
        })
    }

    fn write_inputs(&self, inputs: &BTreeMap<String, Tensor>) -> Result<(), EngineError> {
        let folder = self.dir.path().join("inputs");
        let io = |e: std::io::Error| failed(format!("writing inputs: {e}"));
        reset(&folder).map_err(io)?;
        for (n, (name, t)) in inputs.iter().enumerate() {
            let bytes = prost::Message::encode_to_vec(&t.to_proto(name));
            std::fs::write(folder.join(format!("{n}.pb")), bytes).map_err(io)?;
        }
        reset(&self.dir.path().join("outputs")).map_err(io)
    }

    fn read_outputs(&self) -> Result<BTreeMap<String, Tensor>, EngineError> {
        let folder = self.dir.path().join("outputs");
        let io = |e: std::io::Error| failed(format!("reading outputs: {e}"));
        let mut values = BTreeMap::new();
        for entry in std::fs::read_dir(&folder).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let bytes = std::fs::read(&path).map_err(io)?;
            let proto = decode_tensor(&bytes)
                .map_err(|e| failed(format!("{}: not a TensorProto: {e}", path.display())))?;
            let tensor = Tensor::from_proto(&proto)
                .map_err(|e| failed(format!("value `{}`: {e}", proto.name)))?;
            values.insert(proto.name, tensor);
        }
        Ok(values)
    }

    fn read_failures(&self) -> Result<BTreeMap<String, String>, EngineError> {
        let path = self.dir.path().join("failures.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| failed(format!("{}: {e}", path.display())))
    }
}

/// An empty folder at `path`.
fn reset(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    std::fs::create_dir(path)
}

/// Copies a model file and the external data beside it (every other
/// non-`.onnx` file of its folder) into `to`, as `model.onnx`: the folder
/// [`graph_runtime`] writes goes once the model is loaded.
fn copy_with_external_data(model: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(model, to.join("model.onnx"))?;
    let Some(folder) = model.parent() else {
        return Ok(());
    };
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_none_or(|e| e != "onnx") {
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, to.join(name))?;
            }
        }
    }
    Ok(())
}

impl LoadedModel for Loaded {
    fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EngineError> {
        self.write_inputs(inputs)?;
        let out = Command::new(&self.python.path)
            .arg(self.dir.path().join("onnx_ref_lane.py"))
            .arg(self.dir.path())
            .output()
            .map_err(|e| failed(format!("running {}: {e}", self.python.path.display())))?;
        if !out.status.success() {
            return Err(failed(format!(
                "the ONNX reference could not evaluate the model: {}",
                last_line(&out.stderr)
            )));
        }
        self.failures = self.read_failures()?;
        self.read_outputs()
    }

    fn failures(&mut self) -> BTreeMap<String, String> {
        std::mem::take(&mut self.failures)
    }
}

impl GraphRuntime for OnnxRefEngine {
    const LABEL: &'static str = "the ONNX reference";
    const TAPPING_CAN_CHANGE_VALUES: bool = false;
    type Loaded = Loaded;

    fn load(&self, model: ModelSource, opts: &EngineOptions) -> Result<Loaded, EngineError> {
        if opts.device != Device::Cpu {
            return Err(EngineError::Device {
                engine: NAME,
                device: opts.device,
                why: "ONNX's Python reference runs on the host only".into(),
            });
        }
        Loaded::write(model)
    }

    fn settings(&self, opts: &EngineOptions) -> Vec<(String, String)> {
        let mut settings = vec![("device".into(), opts.device.to_string())];
        if let Ok(p) = python() {
            settings.push(("onnx".into(), p.onnx.clone()));
            settings.push(("python".into(), p.path.display().to_string()));
        }
        settings
    }
}

impl Engine for OnnxRefEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        graph_runtime::prepare(&OnnxRefEngine, graph, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_of_a_traceback_is_the_exception() {
        let err = b"Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad\n\n";
        assert_eq!(last_line(err), "ValueError: bad");
        assert_eq!(last_line(b""), "no output");
    }
}
