//! Case files: what to run, on what, and what to expect.
//!
//! A case names a model (an ONNX file, an ONNX backend-test directory, or a
//! graph written inline in TOML), how to make its inputs (seeded), which
//! backends and device to use, tolerances, sweep grids that expand it into
//! named variants, and declared divergences. Loading turns the raw TOML into
//! fully validated [`Case`]s; every error names the file and the key.

mod expect;
mod inline;
mod inputs;
mod lanes;
pub mod model_file;
mod op_attrs;
mod options;
pub mod raw;
mod resolve;
mod sweep;
mod tensor_file;
mod testdir;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{EngineOptions, OptLevel};
use crate::graph::Graph;
use crate::tensor::Tensor;

use crate::diff::{Tolerance, Tolerances};
pub use expect::{Declared, Expectation};
pub use inline::graph_from_inline;
pub use inputs::generate_tensor;
pub use lanes::PatchedLane;
pub use sweep::show as show_value;

/// A bad case file, model or input: one line naming the file and the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {msg}")]
pub struct CaseError {
    pub file: String,
    pub msg: String,
}

impl CaseError {
    pub fn new(file: &Path, msg: impl fmt::Display) -> CaseError {
        CaseError {
            file: file.display().to_string(),
            msg: msg.to_string(),
        }
    }
}

/// One runnable case (one variant of a case file).
#[derive(Debug, Clone)]
pub struct Case {
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// Variant name for sweeps and backend-test data sets.
    pub variant: Option<String>,
    pub params: BTreeMap<String, toml::Value>,
    pub graph: Arc<Graph>,
    pub inputs: BTreeMap<String, Tensor>,
    /// Expected outputs (backend-test directories): the "expected" lane.
    pub expected: Option<BTreeMap<String, Tensor>>,
    pub backends: Vec<String>,
    pub options: EngineOptions,
    pub tolerances: Tolerances,
    pub expects: Vec<Expectation>,
    /// Declarations of the case file that apply to no variant (kept on its
    /// first variant only, so each fails once: "declared divergence never
    /// applies").
    pub never_applies: Vec<Expectation>,
    /// Backends (`tch`, `candle`) that also run an idiomatic-port lane, `<backend>:port`.
    pub port: Vec<String>,
    /// `[[lane]]`: lanes running the graph with one node's attributes patched,
    /// `<backend>:<name>`.
    pub lanes: Vec<PatchedLane>,
    /// On a CUDA device: also run each backend on the CPU (`<backend>@cpu`)
    /// and compare GPU with CPU per node (`options.cross_device`, default true).
    pub cross_device: bool,
    pub seed: u64,
}

impl Case {
    /// `name` or `name[variant]`.
    pub fn id(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}[{v}]", self.name),
            None => self.name.clone(),
        }
    }

    /// This case with `graph` in place of its own (what a patched lane's engine runs).
    pub fn with_graph(&self, graph: Arc<Graph>) -> Case {
        Case {
            graph,
            ..self.clone()
        }
    }

    /// The typed names of every patched and port lane this case adds.
    pub fn extra_lanes(&self) -> Vec<crate::lane::EngineLane> {
        let device = self.options.device;
        let port = self
            .port
            .iter()
            .map(|b| crate::lane::EngineLane::patched(b, device, crate::lane::Patch::Port));
        port.chain(self.lanes.iter().map(|l| l.lane(device)))
            .collect()
    }
}

/// Backends compiled into this binary and run by default, in report order.
pub fn default_backends() -> Vec<String> {
    crate::backend::BACKENDS
        .iter()
        .filter(|b| b.compiled && b.default)
        .map(|b| b.name.to_string())
        .collect()
}

/// The backends and device that the cases of the case file `path` name as
/// written, read without expanding or resolving anything, so that their
/// lane workers can start while the cases load (`app`). `None` when that
/// cannot be known so early: not a readable TOML case file, or a key set
/// by a sweep parameter (`${...}`). Each `Some` inside is the key as
/// written; absent keys are `None` (the defaults apply).
pub fn named_lanes(path: &Path) -> Option<(Option<Vec<String>>, Option<String>)> {
    if path.extension().is_none_or(|e| e != "toml") {
        return None;
    }
    let table: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
    let plain = |s: &str| (!s.contains("${")).then(|| s.to_string());
    let backends = match table.get("backends") {
        None => None,
        Some(v) => Some(
            v.as_array()?
                .iter()
                .map(|b| plain(b.as_str()?))
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    let device = match table.get("device") {
        None => None,
        Some(v) => Some(plain(v.as_str()?)?),
    };
    Some((backends, device))
}

/// Expands command-line paths into case sources: `.toml` files and backend-test
/// directories; a directory of them is walked (sorted, one level of nesting
/// for test directories).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CaseError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(CaseError::new(p, "no such file or directory"));
        }
        if p.is_file() || p.join("model.onnx").is_file() {
            out.push(p.clone());
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| CaseError::new(p, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|e| {
                e.extension().is_some_and(|x| x == "toml") || e.join("model.onnx").is_file()
            })
            .collect();
        entries.sort();
        if entries.is_empty() {
            return Err(CaseError::new(
                p,
                "holds no case files (*.toml) and no backend-test directories",
            ));
        }
        out.extend(entries);
    }
    Ok(out)
}

/// Loads one case source into its variants.
pub fn load(path: &Path) -> Result<Vec<Case>, CaseError> {
    if !path.is_dir() {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => CaseError::new(
                path,
                "not a case file (not UTF-8 text); an ONNX model runs as one when its name ends in .onnx",
            ),
            _ => CaseError::new(path, e),
        })?;
        return load_text(path, &text);
    }
    let mut cases = resolve::test_dir(path, path, None)?;
    expect::check(path, &mut cases)?;
    Ok(cases)
}

/// Loads the case file text `text` as if read from `path`.
fn load_text(path: &Path, text: &str) -> Result<Vec<Case>, CaseError> {
    let mut cases = sweep::variants(path, text)?
        .into_iter()
        .map(|(name, raw, params)| resolve::resolve(path, raw, name, params))
        .collect::<Result<Vec<_>, _>>()?;
    expect::check(path, &mut cases)?;
    Ok(cases)
}

pub(crate) fn parse_opt_level(s: &str) -> Option<OptLevel> {
    Some(match s {
        "disable" => OptLevel::Disable,
        "basic" => OptLevel::Basic,
        "extended" => OptLevel::Extended,
        "all" => OptLevel::All,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::named_lanes;

    /// `named_lanes` of a case file whose top holds `head`.
    fn named(head: &str) -> Option<(Option<Vec<String>>, Option<String>)> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, format!("{head}\n[model]\nfile = \"m.onnx\"\n")).unwrap();
        named_lanes(&p)
    }

    #[test]
    fn lanes_are_named_early_only_where_written_plainly() {
        let both = named("backends = [\"ort\", \"reference\"]\ndevice = \"cuda:1\"");
        let lanes = vec!["ort".to_string(), "reference".to_string()];
        assert_eq!(both, Some((Some(lanes), Some("cuda:1".into()))));
        assert_eq!(named(""), Some((None, None)));
        assert_eq!(named("backends = [\"${b}\"]"), None);
        assert_eq!(named("device = \"${d}\""), None);
        assert_eq!(named("backends = \"ort\""), None);
        assert_eq!(named("backends = ["), None);
        assert_eq!(named_lanes(std::path::Path::new("m.onnx")), None);
    }
}
