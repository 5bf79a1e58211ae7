//! Scatter, selection and data-dependent index ops: the index maps they take
//! from attributes and from small host inputs, decoded once for the
//! reference and every framework lowering.
//!
//! Spec and opset history:
//! - ScatterElements-11/13/16/18 (<https://onnx.ai/onnx/operators/onnx__ScatterElements.html>):
//!   `output[i with axis replaced by indices[i]] = updates[i]`, or combined by
//!   `reduction` (16: `add`, `mul`; 18: `max`, `min`; see `op::scatter::Reduction`).
//!   Negative indices count from the end of the axis (13+). Scatter-9/11
//!   (<https://onnx.ai/onnx/operators/onnx__Scatter.html>, deprecated) is the same without reduction.
//! - OneHot-9/11 (<https://onnx.ai/onnx/operators/onnx__OneHot.html>): `depth`
//!   is a one-element input (any numeric type, cast to int), `values` =
//!   `[off, on]`; a new axis of size `depth` at `axis` (default -1, counted in
//!   the output's rank). 11: negative indices in `[-depth, -1]` wrap; an index
//!   outside `[-depth, depth - 1]` gives an all-`off` row.
//! - Compress-9/11 (<https://onnx.ai/onnx/operators/onnx__Compress.html>):
//!   the slices along `axis` whose `condition` entry is true (the flattened
//!   input when `axis` is absent); `condition` may be shorter than the axis.
//!   11: negative `axis`.
//! - Unique-11 (<https://onnx.ai/onnx/operators/onnx__Unique.html>): `sorted`
//!   (default 1), optional `axis` (flattened when absent).
//! - ReverseSequence-10 (<https://onnx.ai/onnx/operators/onnx__ReverseSequence.html>):
//!   for batch `b`, the first `sequence_lens[b]` steps along `time_axis` are
//!   reversed, the rest copied; `batch_axis`/`time_axis` are 0 and 1 (defaults 1, 0).
//! - TensorScatter-24 (<https://onnx.ai/onnx/operators/onnx__TensorScatter.html>):
//!   `update` written into `past_cache` along `axis` (default -2, never the
//!   batch axis 0) from `write_indices[b]` (default 0) on; `mode` `circular`
//!   wraps positions modulo the cache length, `linear` must fit.
//!
//! NonZero-9/13 has no parameters to decode.

use super::index::resolve_indices;
use super::{optional, HostView, OpCtx, OpResult};

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The coordinates of flat position `p` in `shape` (row-major).
pub fn coords(p: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    let mut rest = p;
    for k in (0..shape.len()).rev() {
        c[k] = rest % shape[k].max(1);
        rest /= shape[k].max(1);
    }
    c
}

/// ScatterElements' writes: update `j` (row-major over `indices`) goes to
/// flat position `dest[j]` of `data`; `along[j]` is its wrapped index on `axis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementsPlan {
    pub axis: usize,
    pub along: Vec<i64>,
    pub dest: Vec<usize>,
}

/// Validates ScatterElements' shapes and resolves its indices.
pub fn elements_plan(
    ctx: &OpCtx,
    data: &[usize],
    ind_shape: &[usize],
    ind: &[i64],
    upd: &[usize],
) -> OpResult<ElementsPlan> {
    let r = data.len();
    let given = ctx.int("axis", 0)?;
    let axis = ctx.axis(given, r).map_err(|_| {
        ctx.fail(format!(
            "attribute `axis` {given} is out of range for rank {r}"
        ))
    })?;
    let fits = ind_shape.len() == r
        && ind_shape
            .iter()
            .zip(data)
            .enumerate()
            .all(|(k, (i, d))| k == axis || i <= d);
    if !fits || upd != ind_shape {
        return Err(ctx.fail(format!(
            "inputs `indices` {ind_shape:?} and `updates` {upd:?} must match and fit `data` {data:?}"
        )));
    }
    let wrapped = resolve_indices(ctx, ind, data[axis])?;
    let st = strides(data);
    let dest = wrapped
        .iter()
        .enumerate()
        .map(|(j, &w)| {
            let mut c = coords(j, ind_shape);
            c[axis] = w;
            c.iter().zip(&st).map(|(a, s)| a * s).sum()
        })
        .collect();
    Ok(ElementsPlan {
        axis,
        along: wrapped.into_iter().map(|w| w as i64).collect(),
        dest,
    })
}

/// A decoded OneHot node: `class[j]` is index `j`'s wrapped class (`-1`
/// when out of range: an all-`off` row); the new axis is `axis` of the output.
#[derive(Debug, Clone, PartialEq)]
pub struct OneHotPlan {
    pub axis: usize,
    pub depth: usize,
    pub off: f64,
    pub on: f64,
    pub class: Vec<i64>,
    pub out_shape: Vec<usize>,
}

impl OneHotPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Self> {
        let (ind, depth_t, values) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
        let host = |t: &T, what: &str| {
            t.host_floats()
                .map_err(|e| ctx.fail(format!("input `{what}`: {e:?}")))
        };
        let depth = match host(depth_t, "depth")?.as_slice() {
            [d] if *d >= 1.0 => d.trunc() as usize,
            d => return Err(ctx.fail(format!("input `depth` must be one value >= 1, got {d:?}"))),
        };
        let (off, on) = match host(values, "values")?.as_slice() {
            [off, on] => (*off, *on),
            v => return Err(ctx.fail(format!("input `values` must be [off, on], got {v:?}"))),
        };
        let dims = ind.dims();
        let given = ctx.int("axis", -1)?;
        let axis = ctx.axis(given, dims.len() + 1).map_err(|_| {
            ctx.fail(format!(
                "attribute `axis` {given} is out of range for the output's rank"
            ))
        })?;
        let d = depth as i64;
        let class = host(ind, "indices")?
            .into_iter()
            .map(|v| {
                let v = v.trunc() as i64;
                let w = if v < 0 { v + d } else { v };
                if (0..d).contains(&w) {
                    w
                } else {
                    -1
                }
            })
            .collect();
        let mut out_shape = dims;
        out_shape.insert(axis, depth);
        Ok(OneHotPlan {
            axis,
            depth,
            off,
            on,
            class,
            out_shape,
        })
    }
}

/// A decoded Compress node: the kept positions along `axis` (of the
/// flattened input when `axis` is `None`) and the output's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressPlan {
    pub axis: Option<usize>,
    pub kept: Vec<usize>,
    pub out_shape: Vec<usize>,
}

impl CompressPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Self> {
        let (data, cond) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
        let dims = data.dims();
        let axis = if ctx.has("axis") {
            let given = ctx.int("axis", 0)?;
            Some(ctx.axis(given, dims.len()).map_err(|_| {
                ctx.fail(format!(
                    "attribute `axis` {given} is out of range for rank {}",
                    dims.len()
                ))
            })?)
        } else {
            None
        };
        let len = axis.map_or(dims.iter().product(), |a| dims[a]);
        let c = cond
            .host_floats()
            .map_err(|e| ctx.fail(format!("input `condition`: {e:?}")))?;
        let kept: Vec<usize> = (0..c.len()).filter(|&i| c[i] != 0.0).collect();
        if kept.last().is_some_and(|&k| k >= len) {
            return Err(ctx.fail(format!(
                "input `condition` selects position {} of an axis of {len}",
                kept[kept.len() - 1]
            )));
        }
        let out_shape = match axis {
            None => vec![kept.len()],
            Some(a) => {
                let mut s = dims;
                s[a] = kept.len();
                s
            }
        };
        Ok(CompressPlan {
            axis,
            kept,
            out_shape,
        })
    }
}

/// A decoded Unique node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueAttrs {
    pub sorted: bool,
    pub axis: Option<usize>,
}

impl UniqueAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<Self> {
        let axis = if ctx.has("axis") {
            let given = ctx.int("axis", 0)?;
            Some(ctx.axis(given, rank).map_err(|_| {
                ctx.fail(format!(
                    "attribute `axis` {given} is out of range for rank {rank}"
                ))
            })?)
        } else {
            None
        };
        Ok(UniqueAttrs {
            sorted: ctx.int("sorted", 1)? != 0,
            axis,
        })
    }
}

/// A decoded ReverseSequence node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversePlan {
    pub batch_axis: usize,
    pub time_axis: usize,
    pub lens: Vec<usize>,
}

impl ReversePlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Self> {
        let dims = ctx.input(x, 0)?.dims();
        let (b, t) = (ctx.int("batch_axis", 1)?, ctx.int("time_axis", 0)?);
        if dims.len() < 2 || !matches!((b, t), (0, 1) | (1, 0)) {
            return Err(ctx.fail(format!(
                "attributes `batch_axis` {b} and `time_axis` {t} must be 0 and 1 of a rank >= 2 input"
            )));
        }
        let (b, t) = (b as usize, t as usize);
        let lens = ctx
            .input(x, 1)?
            .host_ints()
            .map_err(|e| ctx.fail(format!("input `sequence_lens`: {e:?}")))?;
        if lens.len() != dims[b] || lens.iter().any(|&l| l < 0 || l as usize > dims[t]) {
            return Err(ctx.fail(format!(
                "input `sequence_lens` {lens:?} must hold one length in [0, {}] per batch of {}",
                dims[t], dims[b]
            )));
        }
        Ok(ReversePlan {
            batch_axis: b,
            time_axis: t,
            lens: lens.into_iter().map(|l| l as usize).collect(),
        })
    }

    /// The time step that lands at step `t` of batch `b`.
    pub fn source(&self, b: usize, t: usize) -> usize {
        let n = self.lens[b];
        if t < n {
            n - 1 - t
        } else {
            t
        }
    }

    /// For each element of an input of `shape` (row-major), its source
    /// index along the time axis (a gather index).
    pub fn time_index(&self, shape: &[usize]) -> Vec<i64> {
        (0..shape.iter().product())
            .map(|p| {
                let c = coords(p, shape);
                self.source(c[self.batch_axis], c[self.time_axis]) as i64
            })
            .collect()
    }
}

/// A decoded TensorScatter node: update step `i` of batch `b` goes to
/// position `pos[b][i]` of the cache's `axis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePlan {
    pub axis: usize,
    pub pos: Vec<Vec<usize>>,
}

impl CachePlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Self> {
        let (past, upd) = (ctx.input(x, 0)?.dims(), ctx.input(x, 1)?.dims());
        let r = past.len();
        let given = ctx.int("axis", -2)?;
        let axis = ctx.axis(given, r).ok().filter(|&a| a >= 1).ok_or_else(|| {
            ctx.fail(format!(
                "attribute `axis` {given} must name a non-batch axis of rank {r}"
            ))
        })?;
        let fits = upd.len() == r
            && (0..r).all(|k| {
                if k == axis {
                    upd[k] <= past[k]
                } else {
                    upd[k] == past[k]
                }
            });
        if !fits {
            return Err(ctx.fail(format!(
                "input `update` {upd:?} does not fit `past_cache` {past:?} on axis {axis}"
            )));
        }
        let circular = match ctx.string("mode", "linear")?.as_str() {
            "linear" => false,
            "circular" => true,
            m => return Err(ctx.attr_error("mode", format!("`{m}` is not linear or circular"))),
        };
        let starts = match optional(x, 2) {
            Some(w) => w
                .host_ints()
                .map_err(|e| ctx.fail(format!("input `write_indices`: {e:?}")))?,
            None => vec![0; past[0]],
        };
        let (max, seq) = (past[axis] as i64, upd[axis] as i64);
        if starts.len() != past[0]
            || starts
                .iter()
                .any(|&s| s < 0 || (!circular && s + seq > max))
        {
            return Err(ctx.fail(format!(
                "input `write_indices` {starts:?} must hold one start per batch, each leaving room for {seq} steps of {max}"
            )));
        }
        let pos = starts
            .iter()
            .map(|&s| (0..seq).map(|i| ((s + i) % max.max(1)) as usize).collect())
            .collect();
        Ok(CachePlan { axis, pos })
    }

    /// For each element of `update` (of `shape`, row-major), its position on the cache's axis.
    pub fn scatter_index(&self, shape: &[usize]) -> Vec<i64> {
        (0..shape.iter().product())
            .map(|p| {
                let c = coords(p, shape);
                self.pos[c[0]][c[self.axis]] as i64
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::test_node;

    fn with<R>(op: &str, attrs: Vec<(&str, Attr)>, f: impl FnOnce(&OpCtx) -> R) -> R {
        let node = test_node(op, 3, 1, attrs);
        crate::op::with_node(&node, 18, f)
    }

    #[test]
    fn elements_plan_wraps_and_checks() {
        with("ScatterElements", vec![("axis", Attr::Int(1))], |ctx| {
            // data [2, 3], indices [[2, -3]] on axis 1.
            let p = elements_plan(ctx, &[2, 3], &[1, 2], &[2, -3], &[1, 2]).unwrap();
            assert_eq!((p.along, p.dest), (vec![2, 0], vec![2, 0]));
            assert!(elements_plan(ctx, &[2, 3], &[1, 2], &[3, 0], &[1, 2]).is_err());
            assert!(elements_plan(ctx, &[2, 3], &[1, 2], &[0, 0], &[2, 1]).is_err());
        });
    }

    #[test]
    fn reverse_and_cache_maps() {
        let r = ReversePlan {
            batch_axis: 1,
            time_axis: 0,
            lens: vec![3, 1],
        };
        // [time 3, batch 2]: batch 0 reversed whole, batch 1 untouched.
        assert_eq!(r.time_index(&[3, 2]), vec![2, 0, 1, 1, 0, 2]);
        let c = CachePlan {
            axis: 1,
            pos: vec![vec![3, 0]],
        };
        assert_eq!(c.scatter_index(&[1, 2, 2]), vec![3, 3, 0, 0]);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(coords(7, &[2, 3, 4]), vec![0, 1, 3]);
    }
}
