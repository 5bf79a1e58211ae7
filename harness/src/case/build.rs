//! Turns raw case TOML into runnable cases: sweep expansion, inline graphs,
//! seeded inputs, backend-test directories, and validation of inputs against
//! the model's declared shapes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::raw::{RawCase, RawGraph, RawTensor, RawTol};
use super::{
    default_backends, parse_opt_level, Case, CaseError, Declared, Expectation, Tolerance,
    Tolerances,
};
use crate::backend::{Device, EngineOptions};
use crate::graph::{Dim, Graph};
use crate::onnx::{self, attribute_type as at};
use crate::tensor::{DType, Tensor};

type Params = BTreeMap<String, toml::Value>;

fn err(file: &Path, msg: impl std::fmt::Display) -> CaseError {
    CaseError::new(file, msg)
}

/// Adds "did you mean" to serde's unknown-field messages.
fn toml_error(file: &Path, e: &toml::de::Error, prefix: &str) -> CaseError {
    let msg = e.message().to_string();
    let mut line = msg.clone();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let best = expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|c| (strsim::jaro_winkler(field, c), c))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, c)) = best {
                line = format!("unknown key `{field}`; did you mean `{c}`?");
            } else {
                line = format!("unknown key `{field}`{expected}");
            }
        }
    }
    let at = e.span().map(|_| String::new()).unwrap_or_default();
    err(file, format!("{prefix}{line}{at}"))
}

fn line_of(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(s) => format!(
            "line {}: ",
            text[..s.start.min(text.len())].matches('\n').count() + 1
        ),
        None => String::new(),
    }
}

/// Parses a case file and expands its sweeps.
pub(super) fn load_toml(file: &Path, text: &str) -> Result<Vec<Case>, CaseError> {
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| err(file, format!("{}{}", line_of(text, &e), e.message())))?;
    let has_sweep = doc.contains_key("sweep");
    if !has_sweep {
        let raw: RawCase =
            toml::from_str(text).map_err(|e| toml_error(file, &e, &line_of(text, &e)))?;
        return Ok(vec![resolve(file, raw, None, Params::new())?]);
    }
    let defaults = match doc.get("params") {
        Some(toml::Value::Table(t)) => t.clone().into_iter().collect::<Params>(),
        Some(_) => {
            return Err(err(
                file,
                "key `params`: expected a table of default parameter values",
            ))
        }
        None => Params::new(),
    };
    let sweeps = doc
        .get("sweep")
        .and_then(|s| s.as_array())
        .ok_or_else(|| err(file, "key `sweep`: expected an array of tables ([[sweep]])"))?;
    let mut cases = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, s) in sweeps.iter().enumerate() {
        for (name, params) in expand_sweep(file, i, s, &defaults)? {
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut v = toml::Value::Table(doc.clone());
            substitute(file, &mut v, &params, "")?;
            let raw: RawCase = v
                .try_into()
                .map_err(|e: toml::de::Error| toml_error(file, &e, &format!("variant {name}: ")))?;
            cases.push(resolve(file, raw, Some(name), params)?);
        }
    }
    Ok(cases)
}

/// One sweep's grid -> (variant name, full parameter set).
fn expand_sweep(
    file: &Path,
    i: usize,
    s: &toml::Value,
    defaults: &Params,
) -> Result<Vec<(String, Params)>, CaseError> {
    let key = format!("sweep[{i}]");
    let t = s
        .as_table()
        .ok_or_else(|| err(file, format!("key `{key}`: expected a table")))?;
    for k in t.keys() {
        if k != "name" && k != "grid" {
            return Err(err(
                file,
                format!("key `{key}.{k}`: unknown key (expected `name` or `grid`)"),
            ));
        }
    }
    let prefix = t.get("name").and_then(|n| n.as_str()).map(str::to_string);
    let grid = t.get("grid").and_then(|g| g.as_table()).ok_or_else(|| {
        err(
            file,
            format!("key `{key}.grid`: expected a table of parameter -> [values]"),
        )
    })?;
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (p, values) in grid {
        let values = values.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            err(
                file,
                format!("key `{key}.grid.{p}`: expected a non-empty array of values"),
            )
        })?;
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .map(|c| {
            let label: Vec<String> = c.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
            let name = match &prefix {
                Some(p) => format!("{p}:{}", label.join(",")),
                None => label.join(","),
            };
            let mut params = defaults.clone();
            params.extend(c);
            (name, params)
        })
        .collect())
}

/// A parameter value as shown in variant names (strings without quotes).
pub fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(t) if t.contains_key("name") => show(&t["name"]),
        toml::Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A parameter, or a field of a table-valued one (`${geometry.scales}`).
fn lookup(params: &Params, path: &str) -> Option<toml::Value> {
    let mut parts = path.split('.');
    let mut v = params.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v.clone())
}

/// Replaces `"${p}"` by the parameter's value, and `${p}` inside strings by its text.
fn substitute(
    file: &Path,
    v: &mut toml::Value,
    params: &Params,
    key: &str,
) -> Result<(), CaseError> {
    match v {
        toml::Value::String(s) if s.contains("${") => {
            if let Some(p) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if !p.contains("${") {
                    *v = lookup(params, p).ok_or_else(|| {
                        err(file, format!("key `{key}`: unknown sweep parameter `{p}`"))
                    })?;
                    return Ok(());
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..]
                    .find('}')
                    .ok_or_else(|| err(file, format!("key `{key}`: unclosed `${{`")))?;
                let p = &rest[i + 2..i + end];
                let val = lookup(params, p).ok_or_else(|| {
                    err(file, format!("key `{key}`: unknown sweep parameter `{p}`"))
                })?;
                out.push_str(&show(&val));
                rest = &rest[i + end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                substitute(file, x, params, &format!("{key}[{i}]"))?;
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                if key.is_empty() && (k == "sweep" || k == "params") {
                    continue;
                }
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                substitute(file, x, params, &sub)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn tol(base: Tolerance, raw: Option<RawTol>) -> Tolerance {
    match raw {
        None => base,
        Some(r) => Tolerance {
            atol: r.atol.unwrap_or(base.atol),
            rtol: r.rtol.unwrap_or(base.rtol),
        },
    }
}

fn tolerances(raw: &super::raw::RawTolerance, base: Tolerances) -> Tolerances {
    let mut t = base;
    for (d, r) in [
        (DType::F16, raw.float16),
        (DType::BF16, raw.bfloat16),
        (DType::F32, raw.float32),
        (DType::F64, raw.float64),
    ] {
        let b = t.per_dtype[&d];
        t.per_dtype.insert(d, tol(b, r));
    }
    for (op, r) in &raw.op {
        t.per_op.insert(
            op.clone(),
            tol(
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
                Some(*r),
            ),
        );
    }
    t
}

fn options(file: &Path, raw: &RawCase) -> Result<EngineOptions, CaseError> {
    let mut o = EngineOptions::default();
    if let Some(d) = &raw.device {
        o.device = Device::parse(d).ok_or_else(|| {
            err(
                file,
                format!("key `device`: `{d}` is not a device (expected `cpu` or `cuda:N`)"),
            )
        })?;
    }
    if let Some(l) = &raw.options.ort_optimization {
        o.ort_optimization = parse_opt_level(l).ok_or_else(|| {
            err(file, format!("key `options.ort_optimization`: `{l}` (expected disable, basic, extended or all)"))
        })?;
    }
    o.tf32 = raw.options.tf32;
    o.threads = raw.options.threads.unwrap_or(0);
    Ok(o)
}

fn expectations(file: &Path, raw: &RawCase) -> Result<Vec<Expectation>, CaseError> {
    raw.expect
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let verdict = match e.verdict.as_str() {
                "diverged" => Declared::Diverged,
                "unsupported" => Declared::Unsupported,
                "error" => Declared::Error,
                v => {
                    return Err(err(
                        file,
                        format!("key `expect[{i}].verdict`: `{v}` (expected diverged, unsupported or error)"),
                    ))
                }
            };
            Ok(Expectation {
                backend: e.backend.clone(),
                node: e.node.clone(),
                op: e.op.clone(),
                verdict,
                when: e.when.clone(),
                reason: e.reason.clone(),
            })
        })
        .collect()
}

fn backends(file: &Path, raw: &Option<Vec<String>>) -> Result<Vec<String>, CaseError> {
    let Some(list) = raw else {
        return Ok(default_backends());
    };
    for b in list {
        if !crate::backend::ALL_BACKENDS.contains(&b.as_str()) {
            return Err(err(file, format!("key `backends`: unknown backend `{b}` (expected ort, tch, candle or reference)")));
        }
    }
    Ok(list.clone())
}

fn port(file: &Path, raw: &RawCase) -> Result<Vec<String>, CaseError> {
    for b in &raw.port {
        if !super::PORT_BACKENDS.contains(&b.as_str()) {
            return Err(err(
                file,
                format!("key `port`: `{b}` has no idiomatic-port lane (expected tch or candle)"),
            ));
        }
    }
    Ok(raw.port.clone())
}

/// Resolves one raw case (one variant).
fn resolve(
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
        return Err(err(
            file,
            "key `model`: give exactly one of `path`, `test_dir` or `graph`",
        ));
    }
    if let Some(t) = &m.test_dir {
        let mut cases = load_test_dir(file, &dir.join(t), Some(&raw))?;
        let mut c = cases.remove(0);
        c.variant = variant.or(c.variant);
        c.params = params;
        return Ok(c);
    }
    let graph = match (&m.path, &m.graph) {
        (Some(p), _) => {
            let path = dir.join(p);
            let bytes = std::fs::read(&path)
                .map_err(|e| err(file, format!("key `model.path`: {}: {e}", path.display())))?;
            Graph::from_bytes(&bytes).map_err(|e| err(&path, e))?
        }
        (_, Some(g)) => graph_from_inline(file, g, raw.seed)?,
        _ => unreachable!("checked above"),
    };
    let inputs = make_inputs(file, dir, &graph, &raw)?;
    Ok(Case {
        file: file.to_path_buf(),
        name,
        description: raw.description.clone(),
        variant,
        params,
        graph: Arc::new(graph),
        inputs,
        expected: None,
        backends: backends(file, &raw.backends)?,
        options: options(file, &raw)?,
        tolerances: tolerances(&raw.tolerance, Tolerances::default()),
        expects: expectations(file, &raw)?,
        port: port(file, &raw)?,
        cross_device: raw.options.cross_device.unwrap_or(true),
        seed: raw.seed,
    })
}

fn parse_dtype(file: &Path, key: &str, s: &str) -> Result<DType, CaseError> {
    DType::parse(s).ok_or_else(|| {
        err(file, format!("key `{key}`: unknown dtype `{s}` (expected float32, float16, bfloat16, float64, int8..int64, uint8..uint64 or bool)"))
    })
}

/// Stable per-tensor seed: the case seed mixed with the tensor's name (FNV-1a).
fn tensor_seed(case_seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ case_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Makes a tensor from its case-file description.
pub fn generate_tensor(
    file: &Path,
    dir: &Path,
    key: &str,
    spec: &RawTensor,
    shape: &[usize],
    dtype: DType,
    seed: u64,
) -> Result<Tensor, CaseError> {
    let n: usize = shape.iter().product();
    if let Some(f) = &spec.file {
        let path = dir.join(f);
        let bytes = std::fs::read(&path)
            .map_err(|e| err(file, format!("key `{key}.file`: {}: {e}", path.display())))?;
        let p = onnx::decode_tensor(&bytes)
            .map_err(|e| err(&path, format!("not a TensorProto: {e}")))?;
        return Tensor::from_proto(&p).map_err(|e| err(&path, e));
    }
    let values: Vec<f64> = if let Some(v) = &spec.values {
        if v.len() != n {
            return Err(err(
                file,
                format!(
                    "key `{key}.values`: {} values for shape {shape:?} ({n} elements)",
                    v.len()
                ),
            ));
        }
        v.clone()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed.unwrap_or(seed));
        let dist = spec.dist.as_deref().unwrap_or("uniform");
        let (lo, hi) = (spec.low.unwrap_or(-1.0), spec.high.unwrap_or(1.0));
        match dist {
            "uniform" => (0..n).map(|_| rng.random_range(lo..=hi)).collect(),
            "normal" => {
                let d = Normal::new(spec.mean.unwrap_or(0.0), spec.std.unwrap_or(1.0))
                    .map_err(|e| err(file, format!("key `{key}.std`: {e}")))?;
                (0..n).map(|_| d.sample(&mut rng)).collect()
            }
            "ramp" => {
                let (lo, hi) = (spec.low.unwrap_or(0.0), spec.high.unwrap_or(1.0));
                (0..n).map(|i| if n > 1 { lo + (hi - lo) * i as f64 / (n - 1) as f64 } else { lo }).collect()
            }
            "arange" => (0..n).map(|i| spec.low.unwrap_or(0.0) + i as f64).collect(),
            "checkerboard" => {
                let (lo, hi) = (spec.low.unwrap_or(0.0), spec.high.unwrap_or(1.0));
                let w = shape.last().copied().unwrap_or(1).max(1);
                let h = if shape.len() >= 2 { shape[shape.len() - 2].max(1) } else { 1 };
                (0..n).map(|i| if ((i % w) + (i / w) % h) % 2 == 0 { hi } else { lo }).collect()
            }
            "constant" => vec![spec.value.unwrap_or(0.0); n],
            other => {
                return Err(err(
                    file,
                    format!("key `{key}.dist`: unknown distribution `{other}` (expected uniform, normal, ramp, arange, checkerboard or constant)"),
                ))
            }
        }
    };
    let values: Vec<f64> = if dtype.is_float() {
        values
    } else if dtype == DType::Bool {
        values.iter().map(|v| (*v > 0.0) as u8 as f64).collect()
    } else {
        values.iter().map(|v| v.round()).collect()
    };
    Ok(Tensor::from_f64(dtype, shape, &values))
}

/// Inputs for every graph input: from the case, or generated from the model's
/// declared shape; shapes are checked against the model (symbolic dims bound
/// consistently).
fn make_inputs(
    file: &Path,
    dir: &Path,
    graph: &Graph,
    raw: &RawCase,
) -> Result<BTreeMap<String, Tensor>, CaseError> {
    for name in raw.inputs.keys() {
        if !graph.inputs.iter().any(|i| &i.name == name) {
            let names: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(err(
                file,
                format!(
                    "key `inputs.{name}`: the model has no input `{name}` (inputs: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let mut bound: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeMap::new();
    for vi in &graph.inputs {
        let key = format!("inputs.{}", vi.name);
        let default = RawTensor::default();
        let spec = raw.inputs.get(&vi.name).unwrap_or(&default);
        let dtype = match (&spec.dtype, vi.dtype) {
            (Some(s), model) => {
                let d = parse_dtype(file, &format!("{key}.dtype"), s)?;
                if let Some(m) = model.filter(|m| *m != d) {
                    return Err(err(
                        file,
                        format!(
                            "key `{key}.dtype`: {d} contradicts the model's input `{}` of type {m}",
                            vi.name
                        ),
                    ));
                }
                d
            }
            (None, Some(m)) => m,
            (None, None) => DType::F32,
        };
        let shape = input_shape(file, &key, vi, spec.shape.as_deref(), &mut bound)?;
        let t = generate_tensor(
            file,
            dir,
            &key,
            spec,
            &shape,
            dtype,
            tensor_seed(raw.seed, &vi.name),
        )?;
        check_input(
            file,
            &key,
            &vi.name,
            &t,
            &shape,
            dtype,
            raw.options.allow_nan,
        )?;
        out.insert(vi.name.clone(), t);
    }
    Ok(out)
}

fn input_shape(
    file: &Path,
    key: &str,
    vi: &crate::graph::ValueInfo,
    given: Option<&[usize]>,
    bound: &mut HashMap<String, usize>,
) -> Result<Vec<usize>, CaseError> {
    let Some(dims) = &vi.shape else {
        return given.map(<[usize]>::to_vec).ok_or_else(|| {
            err(
                file,
                format!(
                    "key `{key}.shape`: required (the model gives no shape for `{}`)",
                    vi.name
                ),
            )
        });
    };
    let Some(given) = given else {
        return dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Ok(*n),
                Dim::Symbolic(s) => bound.get(s).copied().ok_or_else(|| {
                    err(
                        file,
                        format!(
                            "key `{key}.shape`: required (dimension `{s}` of `{}` is symbolic)",
                            vi.name
                        ),
                    )
                }),
                Dim::Unknown => Err(err(
                    file,
                    format!(
                        "key `{key}.shape`: required (`{}` has an unknown dimension)",
                        vi.name
                    ),
                )),
            })
            .collect();
    };
    let model: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbolic(s) => s.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect();
    let contradiction = |why: String| {
        err(file, format!("key `{key}.shape`: {given:?} contradicts the model's input `{}` of shape [{}] ({why})", vi.name, model.join(", ")))
    };
    if given.len() != dims.len() {
        return Err(contradiction(format!(
            "rank {} vs {}",
            given.len(),
            dims.len()
        )));
    }
    for (i, (g, d)) in given.iter().zip(dims).enumerate() {
        match d {
            Dim::Fixed(n) if n != g => return Err(contradiction(format!("dimension {i}"))),
            Dim::Symbolic(s) => {
                if let Some(b) = bound.get(s).filter(|b| *b != g) {
                    return Err(contradiction(format!(
                        "dimension {i}: `{s}` is already {b}"
                    )));
                }
                bound.insert(s.clone(), *g);
            }
            _ => {}
        }
    }
    Ok(given.to_vec())
}

fn check_input(
    file: &Path,
    key: &str,
    name: &str,
    t: &Tensor,
    shape: &[usize],
    dtype: DType,
    allow_nan: bool,
) -> Result<(), CaseError> {
    if t.shape() != shape {
        return Err(err(
            file,
            format!(
                "key `{key}`: the tensor has shape {:?}, the model needs {shape:?}",
                t.shape()
            ),
        ));
    }
    if t.dtype() != dtype {
        return Err(err(
            file,
            format!(
                "key `{key}`: the tensor is {}, the model needs {dtype}",
                t.dtype()
            ),
        ));
    }
    if !allow_nan {
        let mut first = None;
        let mut i = 0usize;
        t.for_each_f64(|v| {
            if first.is_none() && !v.is_finite() {
                first = Some((i, v));
            }
            i += 1;
        });
        if let Some((i, v)) = first {
            return Err(err(file, format!("key `{key}`: input `{name}` holds {v} at flat index {i}; set `options.allow_nan = true` to allow non-finite inputs")));
        }
    }
    Ok(())
}

fn attr_proto(
    file: &Path,
    key: &str,
    name: &str,
    v: &toml::Value,
) -> Result<onnx::AttributeProto, CaseError> {
    let mut a = onnx::AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let bad = |what: &str| err(file, format!("key `{key}`: {what}"));
    match v {
        toml::Value::Integer(i) => (a.r#type, a.i) = (at::INT, *i),
        toml::Value::Boolean(b) => (a.r#type, a.i) = (at::INT, *b as i64),
        toml::Value::Float(f) => (a.r#type, a.f) = (at::FLOAT, *f as f32),
        toml::Value::String(s) => (a.r#type, a.s) = (at::STRING, s.clone().into_bytes()),
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_integer()) => {
            a.r#type = at::INTS;
            a.ints = xs.iter().filter_map(toml::Value::as_integer).collect();
        }
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_integer() || x.is_float()) => {
            a.r#type = at::FLOATS;
            a.floats = xs.iter().map(|x| x.as_float().unwrap_or_else(|| x.as_integer().unwrap_or(0) as f64) as f32).collect();
        }
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_str()) => {
            a.r#type = at::STRINGS;
            a.strings = xs.iter().filter_map(|x| x.as_str().map(|s| s.as_bytes().to_vec())).collect();
        }
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("floats") => {
            let xs = t["floats"].as_array().ok_or_else(|| bad("`floats` must be an array"))?;
            a.r#type = at::FLOATS;
            a.floats = xs.iter().map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN) as f32).collect();
        }
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("float") => {
            let x = &t["float"];
            a.r#type = at::FLOAT;
            a.f = x.as_float().or(x.as_integer().map(|i| i as f64)).ok_or_else(|| bad("`float` must be a number"))? as f32;
        }
        toml::Value::Table(t) if t.contains_key("tensor") => {
            let spec: RawTensor = t["tensor"].clone().try_into().map_err(|e: toml::de::Error| bad(e.message()))?;
            let dtype = parse_dtype(file, key, spec.dtype.as_deref().unwrap_or("float32"))?;
            let shape = spec.shape.clone().unwrap_or_default();
            let tensor = generate_tensor(file, Path::new("."), key, &spec, &shape, dtype, 0)?;
            a.r#type = at::TENSOR;
            a.t = Some(tensor.to_proto(name));
        }
        _ => return Err(bad("unsupported attribute value (use an int, float, string, array, { floats = [...] } or { tensor = {...} })")),
    }
    Ok(a)
}

fn value_info(
    file: &Path,
    key: &str,
    name: &str,
    dtype: DType,
    shape: &[toml::Value],
) -> Result<onnx::ValueInfoProto, CaseError> {
    let dims = shape
        .iter()
        .map(|d| {
            let value = match d {
                toml::Value::Integer(n) if *n >= 0 => onnx::dimension::Value::DimValue(*n),
                toml::Value::String(s) => onnx::dimension::Value::DimParam(s.clone()),
                other => {
                    return Err(err(
                        file,
                        format!("key `{key}.shape`: `{other}` is not a dimension"),
                    ))
                }
            };
            Ok(onnx::Dimension {
                value: Some(value),
                denotation: String::new(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tensor = onnx::type_proto::Tensor {
        elem_type: dtype.onnx_code(),
        shape: Some(onnx::TensorShapeProto { dim: dims }),
    };
    Ok(onnx::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(onnx::TypeProto {
            value: Some(onnx::type_proto::Value::TensorType(tensor)),
            denotation: String::new(),
        }),
        ..Default::default()
    })
}

/// Builds an ONNX model from a graph written inline in a case file.
pub fn graph_from_inline(file: &Path, g: &RawGraph, seed: u64) -> Result<Graph, CaseError> {
    let mut gp = onnx::GraphProto {
        name: "inline".into(),
        ..Default::default()
    };
    for (i, v) in g.inputs.iter().enumerate() {
        let key = format!("model.graph.inputs[{i}]");
        let d = parse_dtype(file, &format!("{key}.dtype"), &v.dtype)?;
        gp.input.push(value_info(file, &key, &v.name, d, &v.shape)?);
    }
    for o in &g.outputs {
        gp.output.push(onnx::ValueInfoProto {
            name: o.clone(),
            ..Default::default()
        });
    }
    for (i, init) in g.initializers.iter().enumerate() {
        let key = format!("model.graph.initializers[{i}]");
        let name = init
            .name
            .clone()
            .ok_or_else(|| err(file, format!("key `{key}.name`: required")))?;
        let dtype = parse_dtype(
            file,
            &format!("{key}.dtype"),
            init.dtype.as_deref().unwrap_or("float32"),
        )?;
        // A 1-D initializer given by its values may leave out its shape.
        let shape = init
            .shape
            .clone()
            .or_else(|| init.values.as_ref().map(|v| vec![v.len()]))
            .ok_or_else(|| {
                err(
                    file,
                    format!("key `{key}.shape`: required (or give `values`)"),
                )
            })?;
        let t = generate_tensor(
            file,
            file.parent().unwrap_or(Path::new(".")),
            &key,
            init,
            &shape,
            dtype,
            tensor_seed(seed, &name),
        )?;
        gp.initializer.push(t.to_proto(&name));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let mut attrs = Vec::new();
        for (k, v) in &n.attrs {
            attrs.push(attr_proto(
                file,
                &format!("model.graph.nodes[{i}].attrs.{k}"),
                k,
                v,
            )?);
        }
        gp.node.push(onnx::NodeProto {
            name: n
                .name
                .clone()
                .unwrap_or_else(|| format!("{}_{i}", n.op.to_lowercase())),
            op_type: n.op.clone(),
            input: n.inputs.clone(),
            output: n.outputs.clone(),
            attribute: attrs,
            ..Default::default()
        });
    }
    let model = onnx::ModelProto {
        ir_version: if g.opset >= 21 {
            10
        } else if g.opset >= 19 {
            9
        } else {
            8
        },
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: g.opset,
        }],
        producer_name: "xdiff".into(),
        graph: Some(gp),
        ..Default::default()
    };
    Graph::from_model(model).map_err(|e| err(file, format!("key `model.graph`: {e}")))
}

fn read_pb(path: &Path) -> Result<Tensor, CaseError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let p =
        onnx::decode_tensor(&bytes).map_err(|e| err(path, format!("not a TensorProto: {e}")))?;
    Tensor::from_proto(&p).map_err(|e| err(path, e))
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

/// An ONNX backend-test directory: `model.onnx` + `test_data_set_N/{input,output}_K.pb`.
/// Each data set is a variant; expected outputs become the "expected" lane.
pub(super) fn load_test_dir(
    file: &Path,
    dir: &Path,
    raw: Option<&RawCase>,
) -> Result<Vec<Case>, CaseError> {
    let model_path = dir.join("model.onnx");
    let bytes = std::fs::read(&model_path)
        .map_err(|e| err(file, format!("{}: {e}", model_path.display())))?;
    let graph = Arc::new(Graph::from_bytes(&bytes).map_err(|e| err(&model_path, e))?);
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
        })
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err(err(
            dir,
            "backend-test directory without test_data_set_* folders",
        ));
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for set in sets {
        let ins = numbered(&set, "input_");
        let outs = numbered(&set, "output_");
        if ins.len() != graph.inputs.len() {
            return Err(err(
                &set,
                format!(
                    "{} input files for {} graph inputs",
                    ins.len(),
                    graph.inputs.len()
                ),
            ));
        }
        let mut inputs = BTreeMap::new();
        for (vi, p) in graph.inputs.iter().zip(&ins) {
            inputs.insert(vi.name.clone(), read_pb(p)?);
        }
        let mut expected = BTreeMap::new();
        for (vi, p) in graph.outputs.iter().zip(&outs) {
            expected.insert(vi.name.clone(), read_pb(p)?);
        }
        let (backends, options, tolerances, expects, seed) = match raw {
            Some(r) => (
                backends(file, &r.backends)?,
                options(file, r)?,
                tolerances(&r.tolerance, Tolerances::onnx_backend_test()),
                expectations(file, r)?,
                r.seed,
            ),
            None => (
                default_backends(),
                EngineOptions::default(),
                Tolerances::onnx_backend_test(),
                vec![],
                0,
            ),
        };
        out.push(Case {
            file: file.to_path_buf(),
            name: raw
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| name.clone()),
            description: raw.and_then(|r| r.description.clone()),
            variant: Some(
                set.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            params: Params::new(),
            graph: graph.clone(),
            inputs,
            expected: Some(expected),
            backends,
            options,
            tolerances,
            expects,
            port: raw.map(|r| port(file, r)).transpose()?.unwrap_or_default(),
            cross_device: raw.and_then(|r| r.options.cross_device).unwrap_or(true),
            seed,
        });
    }
    Ok(out)
}

#[allow(dead_code)]
fn _unused(_: ArrayD<f64>, _: IxDyn) {}
