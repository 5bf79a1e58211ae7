//! Case inputs: tensors from values, files or seeded distributions, one
//! stable seed per tensor, and the checks of each input against the model's
//! declared dtype and shape (symbolic dimensions bound consistently).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::raw::{RawCase, RawTensor};
use super::CaseError;
use crate::graph::{Attr, Dim, Graph, Node, ValueInfo};
use crate::op::normalize_axis;
use crate::tensor::{DType, Tensor};

pub(super) fn parse_dtype(file: &Path, key: &str, s: &str) -> Result<DType, CaseError> {
    DType::parse(s).ok_or_else(|| {
        CaseError::new(file, format!("key `{key}`: unknown dtype `{s}` (expected float32, float16, bfloat16, float64, int8..int64, uint8..uint64 or bool)"))
    })
}

/// Stable per-tensor seed: the case seed mixed with the tensor's name (FNV-1a).
pub(super) fn tensor_seed(case_seed: u64, name: &str) -> u64 {
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
        let name = key.strip_prefix("inputs.").unwrap_or(key);
        return super::tensor_file::read(&path, name).map_err(|e| {
            CaseError::new(file, format!("key `{key}.file`: {}: {e}", path.display()))
        });
    }
    let values: Vec<f64> = if let Some(v) = &spec.values {
        if v.len() != n {
            return Err(CaseError::new(
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
                    .map_err(|e| CaseError::new(file, format!("key `{key}.std`: {e}")))?;
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
                return Err(CaseError::new(
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
/// consistently). An integer input that indexes a `Gather`/`GatherElements`
/// is sampled within the gathered axis unless the case says otherwise, and
/// any index out of that axis is bad input.
pub(super) fn make_inputs(
    file: &Path,
    dir: &Path,
    graph: &Graph,
    raw: &RawCase,
) -> Result<BTreeMap<String, Tensor>, CaseError> {
    for name in raw.inputs.keys() {
        if !graph.inputs.iter().any(|i| &i.name == name) {
            let names: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(CaseError::new(
                file,
                format!(
                    "key `inputs.{name}`: the model has no input `{name}` (inputs: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let default = RawTensor::default();
    let mut bound: HashMap<String, usize> = HashMap::new();
    let mut planned = Vec::with_capacity(graph.inputs.len());
    let mut shapes: HashMap<&str, Vec<usize>> = HashMap::new();
    for vi in &graph.inputs {
        let key = format!("inputs.{}", vi.name);
        let spec = raw.inputs.get(&vi.name).unwrap_or(&default);
        let dtype = input_dtype(file, &key, vi, spec)?;
        let shape = input_shape(file, &key, vi, spec.shape.as_deref(), &mut bound)?;
        shapes.insert(&vi.name, shape.clone());
        planned.push((vi, key, spec, dtype, shape));
    }
    let mut out = BTreeMap::new();
    for (vi, key, spec, dtype, shape) in planned {
        let uses = index_uses(graph, &vi.name, &shapes);
        let seed = tensor_seed(raw.seed, &vi.name);
        let t = match gather_range(spec, dtype, &uses) {
            Some(dim) => sample_indices(spec, &shape, dtype, dim, seed),
            None => generate_tensor(file, dir, &key, spec, &shape, dtype, seed)?,
        };
        check_input(
            file,
            &key,
            &vi.name,
            &t,
            &shape,
            dtype,
            raw.options.allow_nan,
        )?;
        check_indices(file, &key, &t, &uses)?;
        out.insert(vi.name.clone(), t);
    }
    Ok(out)
}

fn input_dtype(
    file: &Path,
    key: &str,
    vi: &ValueInfo,
    spec: &RawTensor,
) -> Result<DType, CaseError> {
    Ok(match (&spec.dtype, vi.dtype) {
        (Some(s), model) => {
            let d = parse_dtype(file, &format!("{key}.dtype"), s)?;
            if let Some(m) = model.filter(|m| *m != d) {
                return Err(CaseError::new(
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
    })
}

/// A graph input read as indices (input 1) by a `Gather` or
/// `GatherElements` node.
struct IndexUse<'a> {
    node: &'a Node,
    /// The gathered value (the node's input 0).
    data: &'a str,
    axis: usize,
    /// The length of the gathered axis, when the data's shape is known here
    /// (an initializer or a graph input).
    dim: Option<usize>,
}

fn index_uses<'a>(
    graph: &'a Graph,
    input: &str,
    shapes: &HashMap<&str, Vec<usize>>,
) -> Vec<IndexUse<'a>> {
    graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Gather" | "GatherElements"))
        .filter(|n| n.inputs.get(1).is_some_and(|i| i == input))
        .filter_map(|node| {
            let data = node.inputs.first()?.as_str();
            let shape = match graph.initializers.get(data) {
                Some(t) => Some(t.shape().to_vec()),
                None => shapes.get(data).cloned(),
            };
            let axis = match node.attrs.get("axis") {
                Some(Attr::Int(a)) => *a,
                _ => 0,
            };
            let (axis, dim) = match shape {
                Some(s) => {
                    let axis = normalize_axis(axis, s.len()).ok()?;
                    (axis, s.get(axis).copied())
                }
                None => (usize::try_from(axis).unwrap_or(0), None),
            };
            Some(IndexUse {
                node,
                data,
                axis,
                dim,
            })
        })
        .collect()
}

/// The axis length `[0, dim)` to sample an index input in: an integer input
/// the case gives no values, file or distribution for, whose every
/// gathered axis is known (the shortest wins).
fn gather_range(spec: &RawTensor, dtype: DType, uses: &[IndexUse]) -> Option<usize> {
    let given = spec.values.is_some()
        || spec.file.is_some()
        || spec.dist.is_some()
        || spec.low.is_some()
        || spec.high.is_some();
    if given || !dtype.is_int() || uses.is_empty() {
        return None;
    }
    uses.iter()
        .map(|u| u.dim)
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
        .filter(|d| *d > 0)
}

/// Indices drawn uniformly from `[0, dim)` (seeded like any input).
fn sample_indices(
    spec: &RawTensor,
    shape: &[usize],
    dtype: DType,
    dim: usize,
    seed: u64,
) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed.unwrap_or(seed));
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(0..dim) as f64).collect();
    Tensor::from_f64(dtype, shape, &values)
}

/// Every index within `[-dim, dim)` of each axis it gathers; the first one
/// outside is bad input naming the input and the node.
fn check_indices(file: &Path, key: &str, t: &Tensor, uses: &[IndexUse]) -> Result<(), CaseError> {
    if !t.dtype().is_int() {
        return Ok(());
    }
    for u in uses {
        let Some(dim) = u.dim else { continue };
        let d = dim as f64;
        let mut first = None;
        let mut i = 0usize;
        t.for_each_f64(|v| {
            if first.is_none() && !(-d..d).contains(&v) {
                first = Some((i, v));
            }
            i += 1;
        });
        if let Some((i, v)) = first {
            return Err(CaseError::new(
                file,
                format!(
                    "key `{key}`: index {v} at flat index {i} is outside [-{dim}, {dim}), axis {} of `{}` that node `{}` ({}) gathers",
                    u.axis, u.data, u.node.name, u.node.op_type
                ),
            ));
        }
    }
    Ok(())
}

fn input_shape(
    file: &Path,
    key: &str,
    vi: &ValueInfo,
    given: Option<&[usize]>,
    bound: &mut HashMap<String, usize>,
) -> Result<Vec<usize>, CaseError> {
    let Some(dims) = &vi.shape else {
        return given.map(<[usize]>::to_vec).ok_or_else(|| {
            CaseError::new(
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
                    CaseError::new(
                        file,
                        format!(
                            "key `{key}.shape`: required (dimension `{s}` of `{}` is symbolic)",
                            vi.name
                        ),
                    )
                }),
                Dim::Unknown => Err(CaseError::new(
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
        CaseError::new(file, format!("key `{key}.shape`: {given:?} contradicts the model's input `{}` of shape [{}] ({why})", vi.name, model.join(", ")))
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
        return Err(CaseError::new(
            file,
            format!(
                "key `{key}`: the tensor has shape {:?}, the model needs {shape:?}",
                t.shape()
            ),
        ));
    }
    if t.dtype() != dtype {
        return Err(CaseError::new(
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
            return Err(CaseError::new(file, format!("key `{key}`: input `{name}` holds {v} at flat index {i}; set `options.allow_nan = true` to allow non-finite inputs")));
        }
    }
    Ok(())
}
