//! Case inputs: tensors from values, files or seeded distributions, one
//! stable seed per tensor, and the checks of each input against the model's
//! declared dtype and shape (symbolic dimensions bound consistently).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand::distr::Uniform;
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

/// The most elements xdiff generates for one tensor (2^26: 256 MiB of
/// float32, staged as 512 MiB of float64); a larger shape is one error
/// naming the key, not an allocation the machine cannot make.
const MAX_GENERATED: usize = 1 << 26;

/// The element count of `shape`, checked against [`MAX_GENERATED`].
fn generated_len(file: &Path, key: &str, shape: &[usize]) -> Result<usize, CaseError> {
    // Zero dims count as one: ndarray bounds the product of the others.
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
        .filter(|&n| n <= MAX_GENERATED)
        .map(|_| shape.iter().product())
        .ok_or_else(|| {
            CaseError::new(
                file,
                format!("key `{key}.shape`: {shape:?} holds more than {MAX_GENERATED} elements, the most xdiff generates for one tensor"),
            )
        })
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
    let n = generated_len(file, key, shape)?;
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
        if dist == "specials" {
            specials(file, key, spec, shape, dtype, &mut rng)?
        } else {
            draw(file, key, dist, spec, shape, dtype, &mut rng)?
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

/// The uniform distribution over `[lo, hi]`, when that is one (finite
/// bounds, in order, a finite width).
fn uniform(file: &Path, key: &str, lo: f64, hi: f64) -> Result<Uniform<f64>, CaseError> {
    Uniform::new_inclusive(lo, hi).map_err(|e| {
        CaseError::new(
            file,
            format!("key `{key}.low`/`{key}.high`: no uniform range [{lo}, {hi}] ({e})"),
        )
    })
}

const DISTS: &str = "uniform, normal, ramp, arange, checkerboard, constant, tails, ties, denormal, extremes or specials";

/// `n` values of the distribution `dist` (any but `specials`).
fn draw(
    file: &Path,
    key: &str,
    dist: &str,
    spec: &RawTensor,
    shape: &[usize],
    dtype: DType,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, CaseError> {
    let n: usize = shape.iter().product();
    let (lo, hi) = (spec.low.unwrap_or(-1.0), spec.high.unwrap_or(1.0));
    Ok(match dist {
        "uniform" => {
            let d = uniform(file, key, lo, hi)?;
            (0..n).map(|_| d.sample(rng)).collect()
        }
        "normal" => {
            let d = Normal::new(spec.mean.unwrap_or(0.0), spec.std.unwrap_or(1.0))
                .map_err(|e| CaseError::new(file, format!("key `{key}.std`: {e}")))?;
            (0..n).map(|_| d.sample(rng)).collect()
        }
        "ramp" => {
            let (lo, hi) = (spec.low.unwrap_or(0.0), spec.high.unwrap_or(1.0));
            (0..n)
                .map(|i| {
                    if n > 1 {
                        lo + (hi - lo) * i as f64 / (n - 1) as f64
                    } else {
                        lo
                    }
                })
                .collect()
        }
        "arange" => (0..n).map(|i| spec.low.unwrap_or(0.0) + i as f64).collect(),
        "checkerboard" => {
            let (lo, hi) = (spec.low.unwrap_or(0.0), spec.high.unwrap_or(1.0));
            let w = shape.last().copied().unwrap_or(1).max(1);
            let h = if shape.len() >= 2 {
                shape[shape.len() - 2].max(1)
            } else {
                1
            };
            (0..n)
                .map(|i| {
                    if ((i % w) + (i / w) % h) % 2 == 0 {
                        hi
                    } else {
                        lo
                    }
                })
                .collect()
        }
        "constant" => vec![spec.value.unwrap_or(0.0); n],
        "tails" => tails(file, key, spec, n, rng)?,
        "ties" => pick(&tie_levels(file, key, spec)?, n, rng),
        "denormal" => denormals(file, key, dtype, n, rng)?,
        "extremes" => pick(&extremes(dtype), n, rng),
        other => {
            return Err(CaseError::new(
                file,
                format!("key `{key}.dist`: unknown distribution `{other}` (expected {DISTS})"),
            ))
        }
    })
}

/// `±[low, high]`: a magnitude uniform in `[low, high]` (default `[5, 90]`)
/// with a random sign.
fn tails(
    file: &Path,
    key: &str,
    spec: &RawTensor,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, CaseError> {
    let (lo, hi) = (spec.low.unwrap_or(5.0), spec.high.unwrap_or(90.0));
    if !(0.0 <= lo && lo <= hi) {
        return Err(CaseError::new(
            file,
            format!("key `{key}.low`: `tails` needs 0 <= low <= high (got low {lo}, high {hi})"),
        ));
    }
    let d = uniform(file, key, lo, hi)?;
    Ok((0..n)
        .map(|_| {
            let m = d.sample(rng);
            if rng.random_bool(0.5) {
                m
            } else {
                -m
            }
        })
        .collect())
}

/// `levels` equally spaced values over `[low, high]` (default 3 over
/// `[-1, 1]`; one level: every value `low`).
fn tie_levels(file: &Path, key: &str, spec: &RawTensor) -> Result<Vec<f64>, CaseError> {
    let (lo, hi) = (spec.low.unwrap_or(-1.0), spec.high.unwrap_or(1.0));
    match spec.levels.unwrap_or(3) {
        0 => Err(CaseError::new(
            file,
            format!("key `{key}.levels`: `ties` needs at least one level"),
        )),
        1 => Ok(vec![lo]),
        k => Ok((0..k)
            .map(|i| lo + (hi - lo) * i as f64 / (k - 1) as f64)
            .collect()),
    }
}

/// Subnormal numbers of the dtype: magnitudes log-uniform between the
/// smallest subnormal and the smallest normal number, random sign.
fn denormals(
    file: &Path,
    key: &str,
    dtype: DType,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, CaseError> {
    let (tiny, normal) = match dtype {
        DType::F16 => (2f64.powi(-24), 2f64.powi(-14)),
        DType::BF16 => (2f64.powi(-133), 2f64.powi(-126)),
        DType::F32 => (f32::from_bits(1) as f64, f32::MIN_POSITIVE as f64),
        DType::F64 => (f64::from_bits(1), f64::MIN_POSITIVE),
        other => {
            return Err(CaseError::new(
                file,
                format!("key `{key}.dist`: `denormal` needs a float dtype, not {other}"),
            ))
        }
    };
    let (a, b) = (tiny.ln(), normal.ln());
    Ok((0..n)
        .map(|_| {
            let m = rng.random_range(a..b).exp().clamp(tiny, normal);
            if rng.random_bool(0.5) {
                m
            } else {
                -m
            }
        })
        .collect())
}

/// The dtype's edge values: an integer type's minimum and maximum and their
/// neighbours, 0 and ±1; a float type's largest finite values, its smallest
/// normal number, 0 and ±1. (64-bit integers pass through f64, so their
/// neighbours round onto the extremes.)
fn extremes(dtype: DType) -> Vec<f64> {
    let (min, max) = match dtype {
        DType::I8 => (i8::MIN as f64, i8::MAX as f64),
        DType::I16 => (i16::MIN as f64, i16::MAX as f64),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        DType::U8 => (0.0, u8::MAX as f64),
        DType::U16 => (0.0, u16::MAX as f64),
        DType::U32 => (0.0, u32::MAX as f64),
        DType::U64 => (0.0, u64::MAX as f64),
        DType::Bool => return vec![0.0, 1.0],
        DType::F16 => return float_extremes(65504.0, 2f64.powi(-14)),
        DType::BF16 => return float_extremes(3.3895313892515355e38, 2f64.powi(-126)),
        DType::F32 => return float_extremes(f32::MAX as f64, f32::MIN_POSITIVE as f64),
        DType::F64 => return float_extremes(f64::MAX, f64::MIN_POSITIVE),
    };
    let mut v = vec![min, min + 1.0, max - 1.0, max, 0.0, 1.0];
    if min < 0.0 {
        v.push(-1.0);
    }
    v.dedup();
    v
}

fn float_extremes(max: f64, min_normal: f64) -> Vec<f64> {
    vec![-max, max, -min_normal, min_normal, 0.0, 1.0, -1.0]
}

/// `n` values drawn uniformly from `pool`.
fn pick(pool: &[f64], n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect()
}

/// `dist = "specials"`: the `base` distribution with NaN/±Inf planted in the
/// rows along `axis` (default -1). Row `r` (the rows in row-major order of
/// the other axes) gets special `r mod (k + 1)` of the `k` listed, at the
/// first, middle (`len / 2`) or last position of the row; special `k` is
/// none, so one row in `k + 1` stays finite.
fn specials(
    file: &Path,
    key: &str,
    spec: &RawTensor,
    shape: &[usize],
    dtype: DType,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, CaseError> {
    if !dtype.is_float() {
        return Err(CaseError::new(
            file,
            format!("key `{key}.dist`: `specials` needs a float dtype, not {dtype}"),
        ));
    }
    let base = spec.base.as_deref().unwrap_or("uniform");
    if base == "specials" {
        return Err(CaseError::new(
            file,
            format!("key `{key}.base`: `specials` cannot be its own base (expected another distribution)"),
        ));
    }
    let planted = parse_specials(file, key, spec)?;
    let axis = spec.axis.unwrap_or(-1);
    let axis = normalize_axis(axis, shape.len()).map_err(|_| {
        CaseError::new(
            file,
            format!("key `{key}.axis`: {axis} is outside rank {}", shape.len()),
        )
    })?;
    let mut values = draw(file, key, base, spec, shape, dtype, rng)?;
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    if len == 0 || inner == 0 {
        return Ok(values);
    }
    let rows = values.len() / len;
    for r in 0..rows {
        let Some((v, at)) = planted.get(r % (planted.len() + 1)) else {
            continue;
        };
        let pos = match at {
            At::First => 0,
            At::Middle => len / 2,
            At::Last => len - 1,
        };
        let (outer, i) = (r / inner, r % inner);
        values[(outer * len + pos) * inner + i] = *v;
    }
    Ok(values)
}

enum At {
    First,
    Middle,
    Last,
}

fn parse_specials(file: &Path, key: &str, spec: &RawTensor) -> Result<Vec<(f64, At)>, CaseError> {
    let list = spec.specials.as_deref().unwrap_or_default();
    if list.is_empty() {
        return Err(CaseError::new(
            file,
            format!("key `{key}.specials`: required and non-empty with `dist = \"specials\"` (e.g. [{{ value = \"nan\", at = \"first\" }}])"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let v = match s.value.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => {
                    return Err(CaseError::new(
                        file,
                        format!("key `{key}.specials[{i}].value`: unknown special `{other}` (expected nan, inf or -inf)"),
                    ))
                }
            };
            let at = match s.at.as_str() {
                "first" => At::First,
                "middle" => At::Middle,
                "last" => At::Last,
                other => {
                    return Err(CaseError::new(
                        file,
                        format!("key `{key}.specials[{i}].at`: unknown position `{other}` (expected first, middle or last)"),
                    ))
                }
            };
            Ok((v, at))
        })
        .collect()
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
        generated_len(file, &key, &shape)?;
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
            raw.options.allow_nan || spec.dist.as_deref() == Some("specials"),
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
            let shape = graph
                .initializers
                .shape(data)
                .or_else(|| shapes.get(data).cloned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::raw::RawSpecial;

    fn gen(spec: &RawTensor, shape: &[usize], dtype: DType) -> Result<Vec<f64>, CaseError> {
        let t = generate_tensor(
            Path::new("c.toml"),
            Path::new("."),
            "inputs.X",
            spec,
            shape,
            dtype,
            7,
        )?;
        let mut v = Vec::new();
        t.for_each_f64(|x| v.push(x));
        Ok(v)
    }

    fn special(value: &str, at: &str) -> RawSpecial {
        RawSpecial {
            value: value.into(),
            at: at.into(),
        }
    }

    fn err(spec: &RawTensor, dtype: DType) -> String {
        gen(spec, &[2, 4], dtype).unwrap_err().to_string()
    }

    #[test]
    fn specials_go_to_first_middle_last_of_each_row_in_turn() {
        let spec = RawTensor {
            dist: Some("specials".into()),
            specials: Some(vec![
                special("nan", "first"),
                special("inf", "middle"),
                special("-inf", "last"),
            ]),
            ..Default::default()
        };
        let v = gen(&spec, &[5, 4], DType::F32).unwrap();
        assert!(v[0].is_nan());
        assert_eq!(v[4 + 2], f64::INFINITY);
        assert_eq!(v[8 + 3], f64::NEG_INFINITY);
        assert!(
            v[12..16].iter().all(|x| x.is_finite()),
            "row 3 stays finite"
        );
        assert!(v[16].is_nan(), "row 4 starts the cycle again");
        assert_eq!(v.iter().filter(|x| !x.is_finite()).count(), 4);
    }

    #[test]
    fn specials_along_a_leading_axis() {
        let spec = RawTensor {
            dist: Some("specials".into()),
            base: Some("constant".into()),
            value: Some(2.0),
            axis: Some(0),
            specials: Some(vec![special("nan", "last")]),
            ..Default::default()
        };
        // Shape [3, 2]: rows along axis 0 are columns; column 0 gets NaN at row 2.
        let v = gen(&spec, &[3, 2], DType::F32).unwrap();
        assert!(v[4].is_nan());
        assert_eq!(v.iter().filter(|x| x.is_nan()).count(), 1);
        assert_eq!(v[5], 2.0);
    }

    #[test]
    fn extremes_hold_the_integer_edges() {
        let spec = RawTensor {
            dist: Some("extremes".into()),
            ..Default::default()
        };
        let v = gen(&spec, &[64], DType::I8).unwrap();
        for want in [-128.0, -127.0, 126.0, 127.0, 0.0, 1.0, -1.0] {
            assert!(v.contains(&want), "{want} missing from {v:?}");
        }
        let u = gen(&spec, &[64], DType::U8).unwrap();
        assert!(u.contains(&255.0) && u.iter().all(|x| *x >= 0.0));
    }

    #[test]
    fn denormals_are_subnormal_in_f32() {
        let spec = RawTensor {
            dist: Some("denormal".into()),
            ..Default::default()
        };
        let v = gen(&spec, &[100], DType::F32).unwrap();
        assert!(
            v.iter()
                .all(|x| *x != 0.0 && x.abs() < f32::MIN_POSITIVE as f64),
            "{v:?}"
        );
        assert!(v.iter().any(|x| *x < 0.0) && v.iter().any(|x| *x > 0.0));
    }

    #[test]
    fn ties_draw_from_few_levels_and_tails_from_both_sides() {
        let ties = RawTensor {
            dist: Some("ties".into()),
            levels: Some(2),
            low: Some(0.0),
            high: Some(4.0),
            ..Default::default()
        };
        let v = gen(&ties, &[50], DType::F32).unwrap();
        assert!(v.iter().all(|x| *x == 0.0 || *x == 4.0) && v.contains(&0.0) && v.contains(&4.0));
        let tails = RawTensor {
            dist: Some("tails".into()),
            ..Default::default()
        };
        let v = gen(&tails, &[100], DType::F32).unwrap();
        assert!(v.iter().all(|x| (5.0..=90.0).contains(&x.abs())));
        assert!(v.iter().any(|x| *x < 0.0) && v.iter().any(|x| *x > 0.0));
    }

    #[test]
    fn same_seed_same_values() {
        let spec = RawTensor {
            dist: Some("specials".into()),
            base: Some("tails".into()),
            specials: Some(vec![special("nan", "middle")]),
            ..Default::default()
        };
        let a = gen(&spec, &[4, 6], DType::F32).unwrap();
        let b = gen(&spec, &[4, 6], DType::F32).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn bad_stress_keys_name_the_key() {
        let mut s = RawTensor {
            dist: Some("specials".into()),
            ..Default::default()
        };
        assert!(err(&s, DType::F32).contains("key `inputs.X.specials`"));
        s.specials = Some(vec![special("nan", "centre")]);
        assert!(err(&s, DType::F32)
            .contains("key `inputs.X.specials[0].at`: unknown position `centre`"));
        s.specials = Some(vec![special("NaN!", "first")]);
        assert!(err(&s, DType::F32).contains("key `inputs.X.specials[0].value`"));
        s.specials = Some(vec![special("nan", "first")]);
        assert!(err(&s, DType::I32).contains("needs a float dtype"));
        s.axis = Some(5);
        assert!(err(&s, DType::F32).contains("key `inputs.X.axis`: 5 is outside rank 2"));
        s.axis = None;
        s.base = Some("specials".into());
        assert!(err(&s, DType::F32).contains("key `inputs.X.base`"));
        s.base = Some("gauss".into());
        assert!(err(&s, DType::F32).contains("unknown distribution `gauss`"));
        let t = RawTensor {
            dist: Some("tails".into()),
            low: Some(-1.0),
            ..Default::default()
        };
        assert!(err(&t, DType::F32).contains("key `inputs.X.low`"));
        let l = RawTensor {
            dist: Some("ties".into()),
            levels: Some(0),
            ..Default::default()
        };
        assert!(err(&l, DType::F32).contains("key `inputs.X.levels`"));
        let d = RawTensor {
            dist: Some("denormal".into()),
            ..Default::default()
        };
        assert!(err(&d, DType::I8).contains("`denormal` needs a float dtype"));
    }
}
