//! Assembles runnable [`Case`]s: one raw case (one sweep variant) with its
//! model, inputs and settings, or an ONNX backend-test directory with one
//! case per data set.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::options::Settings;
use super::raw::RawCase;
use super::sweep::Params;
use super::{inline, inputs, lanes, testdir, Case, CaseError, Tolerances};
use crate::graph::Graph;
use crate::tensor::Tensor;

/// Resolves one raw case (one variant).
pub(super) fn resolve(
    file: &Path,
    raw: RawCase,
    variant: Option<String>,
    params: Params,
) -> Result<Case, CaseError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = raw.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let m = &raw.model;
    let given = [m.path.is_some(), m.test_dir.is_some(), m.graph.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given != 1 {
        return Err(CaseError::new(
            file,
            "key `model`: give exactly one of `path`, `test_dir` or `graph`",
        ));
    }
    if let Some(t) = &m.test_dir {
        let mut cases = test_dir(file, &dir.join(t), Some(&raw))?;
        let mut c = cases.remove(0);
        c.variant = variant.or(c.variant);
        c.params = params;
        c.lanes = lanes::patched_lanes(file, &raw.lane, &c.graph)?;
        return Ok(c);
    }
    let graph = match (&m.path, &m.graph) {
        (Some(p), _) => model_graph(file, &dir.join(p))?,
        (_, Some(g)) => inline::graph_from_inline(file, g, raw.seed)?,
        _ => unreachable!("checked above"),
    };
    let inputs = inputs::make_inputs(file, dir, &graph, &raw)?;
    let settings = Settings::from_raw(file, &raw, Tolerances::default())?;
    let lanes = lanes::patched_lanes(file, &raw.lane, &graph)?;
    let mut c = case(
        file,
        name,
        raw.description,
        settings,
        Model {
            variant,
            params,
            graph: Arc::new(graph),
            inputs,
            expected: None,
        },
    );
    c.lanes = lanes;
    Ok(c)
}

/// The model at `path`, named by the case `file` (key `model.path`).
pub(super) fn model_graph(file: &Path, path: &Path) -> Result<Graph, CaseError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CaseError::new(file, format!("key `model.path`: {}: {e}", path.display())))?;
    Graph::from_file_bytes(bytes, path).map_err(|e| CaseError::new(path, e))
}

/// An ONNX backend-test directory, one case per data set (the variant);
/// expected outputs become the "expected" lane. `raw` is the case file that
/// names the directory, if any.
pub(super) fn test_dir(
    file: &Path,
    dir: &Path,
    raw: Option<&RawCase>,
) -> Result<Vec<Case>, CaseError> {
    let td = testdir::read(file, dir)?;
    let base = Tolerances::onnx_backend_test();
    let (name, description) = match raw {
        Some(r) => (r.name.clone().unwrap_or(td.name), r.description.clone()),
        None => (td.name, None),
    };
    let cases = td.sets.into_iter().map(|set| {
        let settings = match raw {
            Some(r) => Settings::from_raw(file, r, base.clone())?,
            None => Settings::defaults(base.clone()),
        };
        let model = Model {
            variant: Some(set.name),
            params: Params::new(),
            graph: td.graph.clone(),
            inputs: set.inputs,
            // No output_*.pb files: nothing to compare, so no `expected` lane
            // (a lane that compares nothing would fail the case).
            expected: (!set.expected.is_empty()).then_some(set.expected),
        };
        Ok(case(
            file,
            name.clone(),
            description.clone(),
            settings,
            model,
        ))
    });
    cases.collect()
}

/// What a case runs: one variant's graph, inputs and expected outputs.
struct Model {
    variant: Option<String>,
    params: Params,
    graph: Arc<Graph>,
    inputs: BTreeMap<String, Tensor>,
    expected: Option<BTreeMap<String, Tensor>>,
}

fn case(file: &Path, name: String, description: Option<String>, s: Settings, m: Model) -> Case {
    Case {
        file: file.to_path_buf(),
        name,
        description,
        variant: m.variant,
        params: m.params,
        graph: m.graph,
        inputs: m.inputs,
        expected: m.expected,
        backends: s.backends,
        options: s.options,
        tolerances: s.tolerances,
        expects: s.expects,
        never_applies: vec![],
        port: s.port,
        lanes: vec![],
        cross_device: s.cross_device,
        seed: s.seed,
    }
}
