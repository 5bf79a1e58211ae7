//! ONNX backend-test directories: `model.onnx` plus
//! `test_data_set_N/{input,output}_K.pb`, read into a graph and one set of
//! inputs and expected outputs per data set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::CaseError;
use crate::graph::Graph;
use crate::onnx;
use crate::tensor::Tensor;

fn read_pb(path: &Path) -> Result<Tensor, CaseError> {
    let bytes = std::fs::read(path).map_err(|e| CaseError::new(path, e))?;
    let p = onnx::decode_tensor(&bytes)
        .map_err(|e| CaseError::new(path, format!("not a TensorProto: {e}")))?;
    Tensor::from_proto(&p).map_err(|e| CaseError::new(path, e))
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix(prefix)?
                .strip_suffix(".pb")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// An ONNX backend-test directory, read.
pub(super) struct TestDir {
    /// The directory's name.
    pub name: String,
    pub graph: Arc<Graph>,
    /// In directory order.
    pub sets: Vec<DataSet>,
}

/// One `test_data_set_N`: inputs by graph input, expected outputs by graph output.
pub(super) struct DataSet {
    pub name: String,
    pub inputs: BTreeMap<String, Tensor>,
    pub expected: BTreeMap<String, Tensor>,
}

/// Reads `dir` (`file` is the case file that names it, for errors).
pub(super) fn read(file: &Path, dir: &Path) -> Result<TestDir, CaseError> {
    let model_path = dir.join("model.onnx");
    let bytes = std::fs::read(&model_path)
        .map_err(|e| CaseError::new(file, format!("{}: {e}", model_path.display())))?;
    let graph =
        Graph::from_file_bytes(bytes, &model_path).map_err(|e| CaseError::new(&model_path, e))?;
    let sets = data_set_dirs(dir)?
        .iter()
        .map(|set| data_set(&graph, set))
        .collect::<Result<_, _>>()?;
    Ok(TestDir {
        name: file_name(dir),
        graph: Arc::new(graph),
        sets,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `test_data_set_*` folders of `dir`, sorted; at least one.
fn data_set_dirs(dir: &Path) -> Result<Vec<PathBuf>, CaseError> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CaseError::new(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && file_name(p).starts_with("test_data_set_"))
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err(CaseError::new(
            dir,
            "backend-test directory without test_data_set_* folders",
        ));
    }
    Ok(sets)
}

fn data_set(graph: &Graph, set: &Path) -> Result<DataSet, CaseError> {
    let ins = numbered(set, "input_");
    let outs = numbered(set, "output_");
    if ins.len() != graph.inputs.len() {
        return Err(CaseError::new(
            set,
            format!(
                "{} input files for {} graph inputs",
                ins.len(),
                graph.inputs.len()
            ),
        ));
    }
    let read_all = |names: &[crate::graph::ValueInfo], files: &[PathBuf]| {
        names
            .iter()
            .zip(files)
            .map(|(vi, p)| Ok((vi.name.clone(), read_pb(p)?)))
            .collect::<Result<BTreeMap<_, _>, CaseError>>()
    };
    Ok(DataSet {
        name: file_name(set),
        inputs: read_all(&graph.inputs, &ins)?,
        expected: read_all(&graph.outputs, &outs)?,
    })
}
