//! A model file run without a case file: `xdiff run model.onnx` and the
//! starter case `xdiff case model.onnx` writes. Both turn the model and the
//! command line (`--shape`, `--input`, `--seed`) into the same case-file
//! text, which the ordinary case loader resolves, so a starter case
//! reproduces its run by construction: same defaults, same seeded inputs,
//! same tolerances (the case defaults), every compiled-in backend.
//!
//! A path is a model when it is a file whose name ends in `.onnx` (any
//! case); everything else is read as before (case file or backend-test
//! directory). The command line is checked against the model here, so a bad
//! flag gets a line naming the flag: an unknown input name, a shape that
//! contradicts a fixed dimension or another input's binding of a symbolic
//! one, an input file of the wrong dtype or shape, and a symbolic dimension
//! left unset.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::resolve::model_graph;
use super::{load_text, tensor_file, Case, CaseError};
use crate::diff::Tolerances;
use crate::graph::{Dim, Graph, ValueInfo};

/// What the command line says about a model's inputs.
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    /// `--shape name=d0,d1,...`: the shape of an input, binding its symbolic dimensions.
    pub shapes: Vec<(String, Vec<usize>)>,
    /// `--input name=FILE`: an input's values from `.npy`, `.npz` or `.pb`.
    pub inputs: Vec<(String, PathBuf)>,
    /// `--seed`: seeds every generated input.
    pub seed: u64,
}

/// Whether `path` names a model file: `*.onnx`, in any case.
pub fn is_model_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Whether `path` is run as a model file: a file named `*.onnx`.
pub fn is_model_file(path: &Path) -> bool {
    path.is_file() && is_model_path(path)
}

/// The case `xdiff run model.onnx` runs (one variant). Errors name the model file.
pub fn load(model: &Path, spec: &ModelSpec) -> Result<Vec<Case>, CaseError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| CaseError::new(p, e));
    let inputs = spec.inputs.iter().map(|(n, p)| Ok((n.clone(), abs(p)?)));
    let spec = ModelSpec {
        inputs: inputs.collect::<Result<_, CaseError>>()?,
        ..spec.clone()
    };
    let text = starter(&abs(model)?, &spec)?;
    load_text(model, &text)
}

/// The starter case file for `model`: its paths are written as given (so
/// relative to the current directory, where the case is meant to be saved).
pub fn starter(model: &Path, spec: &ModelSpec) -> Result<String, CaseError> {
    if !model.is_file() {
        return Err(CaseError::new(model, "no such file"));
    }
    let graph = model_graph(model, model)?;
    let inputs = plan(model, &graph, spec)?;
    Ok(render(model, &graph, &inputs, spec))
}

/// One model input as the case will make it.
struct Planned<'g> {
    info: &'g ValueInfo,
    shape: Vec<usize>,
    file: Option<&'g Path>,
}

/// Where a symbolic dimension got its size: the flag that set it.
type Bindings = BTreeMap<String, (usize, String)>;

fn plan<'g>(
    model: &Path,
    graph: &'g Graph,
    spec: &'g ModelSpec,
) -> Result<Vec<Planned<'g>>, CaseError> {
    let bad = |msg: String| CaseError::new(model, msg);
    check_names(graph, spec).map_err(bad)?;
    let mut bound = Bindings::new();
    let mut given = BTreeMap::new();
    for vi in &graph.inputs {
        if let Some((shape, from)) = given_shape(vi, spec).map_err(bad)? {
            bind(vi, &shape, &from, &mut bound).map_err(bad)?;
            given.insert(vi.name.as_str(), shape);
        }
    }
    let file = |name: &str| spec.inputs.iter().find(|(n, _)| n == name);
    graph
        .inputs
        .iter()
        .map(|vi| {
            let shape = match given.remove(vi.name.as_str()) {
                Some(s) => s,
                None => model_shape(vi, &bound).map_err(bad)?,
            };
            let file = file(&vi.name).map(|(_, p)| p.as_path());
            Ok(Planned {
                info: vi,
                shape,
                file,
            })
        })
        .collect()
}

/// Every `--shape` and `--input` names an input of the model, once.
fn check_names(graph: &Graph, spec: &ModelSpec) -> Result<(), String> {
    let names: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
    let flags = spec.shapes.iter().map(|(n, _)| ("--shape", n));
    let flags = flags.chain(spec.inputs.iter().map(|(n, _)| ("--input", n)));
    let mut seen = Vec::new();
    for (flag, name) in flags {
        if !names.contains(&name.as_str()) {
            return Err(format!(
                "{flag} {name}: the model has no input `{name}` (inputs: {})",
                names.join(", ")
            ));
        }
        if seen.contains(&(flag, name)) {
            return Err(format!("{flag} {name}: given twice"));
        }
        seen.push((flag, name));
    }
    Ok(())
}

/// The shape the flags give `vi` (`--input`'s file, `--shape`, which must
/// agree), with the flag that gave it.
fn given_shape(vi: &ValueInfo, spec: &ModelSpec) -> Result<Option<(Vec<usize>, String)>, String> {
    let name = &vi.name;
    let shape = spec.shapes.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let Some((_, path)) = spec.inputs.iter().find(|(n, _)| n == name) else {
        return Ok(shape.map(|s| (s.clone(), format!("--shape {name}"))));
    };
    let flag = format!("--input {name}={}", path.display());
    let file = file_shape(vi, path, &flag)?;
    match shape.filter(|s| **s != file) {
        Some(s) => Err(format!(
            "{flag}: the file's shape {file:?} contradicts --shape {name} {s:?}"
        )),
        None => Ok(Some((file, flag))),
    }
}

/// The shape of the tensor in `path`, after checking its dtype against the model's.
fn file_shape(vi: &ValueInfo, path: &Path, flag: &str) -> Result<Vec<usize>, String> {
    let t = tensor_file::read(path, &vi.name).map_err(|e| format!("{flag}: {e}"))?;
    match vi.dtype {
        Some(d) if d != t.dtype() => Err(format!(
            "{flag}: the file holds {}, the model's input `{}` is {d}",
            t.dtype(),
            vi.name
        )),
        _ => Ok(t.shape().to_vec()),
    }
}

/// `[N, 3, 224, 224]`: the model's declared shape of `vi`.
fn declared(dims: &[Dim]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbolic(s) => s.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Checks `shape` (from the flag `from`) against the model's dimensions of
/// `vi` and records the symbolic dimensions it sets.
fn bind(vi: &ValueInfo, shape: &[usize], from: &str, bound: &mut Bindings) -> Result<(), String> {
    let Some(dims) = &vi.shape else {
        return Ok(());
    };
    let against = || format!("the model's input `{}` is {}", vi.name, declared(dims));
    if dims.len() != shape.len() {
        return Err(format!(
            "{from}: {shape:?} has rank {}, {}",
            shape.len(),
            against()
        ));
    }
    for (i, (d, &g)) in dims.iter().zip(shape).enumerate() {
        match d {
            Dim::Fixed(n) if *n != g => {
                return Err(format!(
                    "{from}: dimension {i} is {g}, {} (fixed at {n})",
                    against()
                ))
            }
            Dim::Symbolic(s) => match bound.get(s) {
                Some((b, by)) if *b != g => {
                    return Err(format!(
                        "{from}: dimension {i} (`{s}`) is {g}, but {by} sets `{s}` to {b}"
                    ))
                }
                Some(_) => {}
                None => {
                    bound.insert(s.clone(), (g, from.to_string()));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// The shape of an input no flag gave: the model's, with its symbolic
/// dimensions as other flags bound them.
fn model_shape(vi: &ValueInfo, bound: &Bindings) -> Result<Vec<usize>, String> {
    let name = &vi.name;
    let Some(dims) = &vi.shape else {
        return Err(format!(
            "the model gives no shape for input `{name}`; set it with --shape {name}=d0,d1,..."
        ));
    };
    let example: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbolic(s) => bound.get(s).map_or(1, |b| b.0).to_string(),
            Dim::Unknown => "1".into(),
        })
        .collect();
    let unset = |i: usize, what: String| {
        format!(
            "input `{name}` {} has {what} (dimension {i}); set it with --shape, e.g. --shape {name}={}",
            declared(dims),
            example.join(",")
        )
    };
    dims.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Fixed(n) => Ok(*n),
            Dim::Symbolic(s) => bound
                .get(s)
                .map(|b| b.0)
                .ok_or_else(|| unset(i, format!("the symbolic dimension `{s}`"))),
            Dim::Unknown => Err(unset(i, "an unnamed dimension".into())),
        })
        .collect()
}

/// A TOML string (quoted, escaped).
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// Appends `code`, then `# comment` aligned in one column when there is one.
fn line(s: &mut String, code: &str, comment: &str) {
    let _ = match comment {
        "" => writeln!(s, "{code}"),
        c => writeln!(s, "{code:<38} # {c}"),
    };
}

/// The starter case text. Every line but the name, the seed, the model and
/// the inputs' shapes and files is a comment: defaults stay defaults.
fn render(model: &Path, graph: &Graph, inputs: &[Planned], spec: &ModelSpec) -> String {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = format!(
        "# A starter case for {}, written by `xdiff case`: `xdiff run` on this\n\
         # file runs what `xdiff run` on the model with the same flags runs (same\n\
         # inputs, same verdicts). Paths are relative to this file (docs/cases.md).\n",
        model.display()
    );
    line(&mut s, &format!("name = {}", quoted(&stem)), "");
    let seed = format!("seed = {}", spec.seed);
    line(&mut s, &seed, "seeds every generated input (--seed)");
    let all = format!("# backends = [{}]", quoted_list(&super::default_backends()));
    line(&mut s, &all, "default: every backend compiled in");
    line(&mut s, "# device = \"cuda:0\"", "default: cpu");
    let port = "# port = [\"tch\", \"candle\"]";
    line(
        &mut s,
        port,
        "also the idiomatic-port lanes `tch:port`, `candle:port`",
    );
    let path = format!("path = {}", quoted(&model.to_string_lossy()));
    s.push_str("\n[model]\n");
    line(&mut s, &path, "");
    for p in inputs {
        render_input(&mut s, p);
    }
    let node = graph.nodes.first().map_or("<node>", |n| n.name.as_str());
    render_hints(&mut s, &quoted(node));
    s
}

fn quoted_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    items.join(", ")
}

fn render_input(s: &mut String, p: &Planned) {
    let vi = p.info;
    let dtype = vi.dtype.map_or("untyped".to_string(), |d| d.to_string());
    let dims = vi.shape.as_deref().map_or("no shape".into(), declared);
    s.push('\n');
    let table = format!("[inputs.{}]", key(&vi.name));
    line(s, &table, &format!("the model's input: {dtype} {dims}"));
    line(s, &format!("shape = {:?}", p.shape), "");
    match p.file {
        Some(f) => line(s, &format!("file = {}", quoted(&f.to_string_lossy())), ""),
        None => {
            let dist = "# dist = \"normal\"";
            line(s, dist, "default: the dtype's default (docs/cases.md)");
            let all = "uniform | normal | ramp | arange | checkerboard | constant";
            line(s, "#", all);
            let file = format!("# file = {}", quoted(&format!("{}.npy", vi.name)));
            line(
                s,
                &file,
                "or values from a file: .npy, .npz or .pb (TensorProto)",
            );
        }
    }
}

fn render_hints(s: &mut String, node: &str) {
    let defaults: Vec<String> = Tolerances::default()
        .per_dtype
        .iter()
        .map(|(d, t)| format!("{d} {:e}/{:e}", t.atol, t.rtol))
        .collect();
    s.push('\n');
    line(
        s,
        "# [tolerance]",
        "|a - ref| <= atol + rtol * |ref|; defaults atol/rtol:",
    );
    line(s, "#", &defaults.join(", "));
    line(s, "# float32 = { atol = 1e-5, rtol = 1e-4 }", "");
    line(s, "# [tolerance.op.Resize]", "per op type");
    line(s, "# atol = 1e-4", "");
    s.push('\n');
    line(
        s,
        "# [[lane]]",
        "this graph with one node's attributes patched",
    );
    line(s, "# backend = \"ort\"", "lane `ort:<node>-<attr>`");
    let patch = format!("# patch = {{ node = {node}, attrs = {{ <attr> = <value> }} }}");
    line(s, &patch, "");
    s.push('\n');
    line(
        s,
        "# [[expect]]",
        "a declared divergence, strict: it must keep happening",
    );
    line(s, "# backend = \"candle\"", "");
    line(s, &format!("# node = {node}"), "or op = \"<Op>\"");
    line(
        s,
        "# verdict = \"unsupported\"",
        "diverged | unsupported | error | skipped",
    );
    line(s, "# reason = \"why this is not a finding\"", "");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vi(dims: Vec<Dim>) -> ValueInfo {
        ValueInfo {
            name: "x".into(),
            dtype: None,
            shape: Some(dims),
        }
    }

    #[test]
    fn a_symbolic_dimension_is_bound_once_and_checked_after() {
        let x = vi(vec![Dim::Symbolic("N".into()), Dim::Fixed(3)]);
        let mut bound = Bindings::new();
        bind(&x, &[2, 3], "--shape x", &mut bound).unwrap();
        assert_eq!(model_shape(&x, &bound).unwrap(), vec![2, 3]);
        let e = bind(&x, &[4, 3], "--shape y", &mut bound).unwrap_err();
        assert_eq!(
            e,
            "--shape y: dimension 0 (`N`) is 4, but --shape x sets `N` to 2"
        );
        let e = bind(&x, &[2, 5], "--shape x", &mut bound).unwrap_err();
        assert!(
            e.contains("dimension 1 is 5") && e.contains("fixed at 3"),
            "{e}"
        );
    }

    #[test]
    fn an_unset_symbolic_dimension_names_the_input_and_the_dimension() {
        let x = vi(vec![Dim::Symbolic("N".into()), Dim::Fixed(3)]);
        let e = model_shape(&x, &Bindings::new()).unwrap_err();
        assert_eq!(
            e,
            "input `x` [N, 3] has the symbolic dimension `N` (dimension 0); set it with --shape, e.g. --shape x=1,3"
        );
    }

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key("image"), "image");
        assert_eq!(key("input.1"), "\"input.1\"");
    }
}
