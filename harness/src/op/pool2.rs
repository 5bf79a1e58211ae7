//! LpPool and MaxUnpool: their windows and output plans, decoded once.
//!
//! Specs: <https://onnx.ai/onnx/operators/onnx__LpPool.html> (1: `p` a float,
//! default 2; 2/11: `p` an int, 11 clarified `pads`; 18 adds `ceil_mode` and
//! `dilations`; 22 bfloat16): y = (Σ |x|^p)^(1/p) over each window, padding
//! counting as zeros, with the pools' geometry ([`WindowAttrs`]).
//! <https://onnx.ai/onnx/operators/onnx__MaxUnpool.html> (9/11/22): scatters
//! X into zeros of shape `output_shape` (the optional third input) or, per
//! spatial axis, (in − 1)·stride + kernel − pad_begin − pad_end, at the flat
//! indices MaxPool's `Indices` output uses (over N·C·spatial, row-major).

use super::window::{require_since, WindowAttrs};
use super::{OpCtx, OpResult};
use crate::graph::Attr;

/// A decoded LpPool node.
#[derive(Debug, Clone, PartialEq)]
pub struct LpPoolAttrs {
    pub window: WindowAttrs,
    pub p: f64,
}

impl LpPoolAttrs {
    /// Decodes over X's dims (N, C, D1, ...).
    pub fn decode(ctx: &OpCtx, dims: &[usize]) -> OpResult<Self> {
        if dims.len() < 3 {
            return Err(ctx.fail(format!("input `X` must be (N, C, D1, ...), got {dims:?}")));
        }
        require_since(ctx, "ceil_mode", 18)?;
        require_since(ctx, "dilations", 18)?;
        let p = match ctx.node.attrs.get("p") {
            None => 2.0,
            Some(Attr::Float(v)) if ctx.opset < 2 => f64::from(*v),
            Some(_) if ctx.opset < 2 => {
                return Err(ctx.attr_error("p", "expected float at opset 1"))
            }
            Some(_) => ctx.int("p", 2)? as f64,
        };
        if !(p.is_finite() && p > 0.0) {
            return Err(ctx.attr_error("p", format!("{p} must be > 0")));
        }
        Ok(LpPoolAttrs {
            window: WindowAttrs::decode(ctx, &dims[2..], None)?,
            p,
        })
    }

    /// Per spatial axis of `spatial`: the zeros to add before and after so
    /// that, for every kernel tap j, the strided run starting at j·dilation
    /// with `out · stride` elements lies inside (padding counts as zero, so
    /// extra zeros change no sum).
    pub fn zero_pads(&self, spatial: &[usize]) -> Vec<(usize, usize)> {
        let w = &self.window;
        spatial
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let begin = w.pads[i].0 as usize;
                let need = (w.kernel[i] - 1) * w.dilations[i] + w.out[i] * w.strides[i];
                (begin, need.saturating_sub(len + begin))
            })
            .collect()
    }

    /// Every kernel tap as its start offset per axis (j · dilation), row-major.
    pub fn taps(&self) -> Vec<Vec<usize>> {
        let w = &self.window;
        let mut taps = vec![vec![]];
        for i in 0..w.kernel.len() {
            taps = taps
                .into_iter()
                .flat_map(|t| {
                    (0..w.kernel[i]).map(move |j| {
                        let mut t = t.clone();
                        t.push(j * w.dilations[i]);
                        t
                    })
                })
                .collect();
        }
        taps
    }
}

/// A decoded MaxUnpool node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpoolPlan {
    /// The shape the indices address: (N, C, (in − 1)·stride + kernel − pads).
    pub inferred: Vec<usize>,
    /// The output shape: `output_shape` when given (at least `inferred`),
    /// holding `inferred` at its origin and zeros after, as the ONNX
    /// reference and its node test `maxunpool_export_with_output_shape` read it.
    pub out: Vec<usize>,
    pub strides: Vec<usize>,
    /// Begin pads per spatial axis.
    pub pads: Vec<usize>,
}

impl UnpoolPlan {
    /// Decodes over X's dims, I's dims and the `output_shape` input's values.
    pub fn decode(
        ctx: &OpCtx,
        x: &[usize],
        indices: &[usize],
        output_shape: Option<Vec<i64>>,
    ) -> OpResult<Self> {
        if x.len() < 3 {
            return Err(ctx.fail(format!("input `X` must be (N, C, D1, ...), got {x:?}")));
        }
        if x != indices {
            return Err(ctx.fail(format!("input `I` has shape {indices:?}, X has {x:?}")));
        }
        let n = x.len() - 2;
        let kernel = ctx
            .ints("kernel_shape")?
            .filter(|k| k.len() == n && k.iter().all(|&v| v >= 1))
            .ok_or_else(|| ctx.attr_error("kernel_shape", format!("required, {n} values >= 1")))?;
        let strides = ctx.per_axis("strides", n, 1)?;
        let pads = ctx.per_axis("pads", 2 * n, 0)?;
        if strides.iter().any(|&s| s < 1) || pads.iter().any(|&p| p < 0) {
            return Err(ctx.attr_error("strides", "strides must be >= 1 and pads >= 0"));
        }
        let mut inferred = x[..2].to_vec();
        for i in 0..n {
            let len = (x[i + 2] as i64 - 1) * strides[i] + kernel[i] - pads[i] - pads[i + n];
            if len < 0 {
                return Err(ctx.fail(format!("spatial axis {i}: output length {len} < 0")));
            }
            inferred.push(len as usize);
        }
        let out = match output_shape {
            None => inferred.clone(),
            Some(s)
                if s.len() == x.len()
                    && s[..2].iter().zip(x).all(|(&a, &b)| a == b as i64)
                    && s[2..]
                        .iter()
                        .zip(&inferred[2..])
                        .all(|(&a, &b)| a >= b as i64) =>
            {
                s.iter().map(|&v| v as usize).collect()
            }
            Some(s) => {
                return Err(ctx.fail(format!(
                    "input `output_shape` {s:?} must keep N, C and be at least {inferred:?}"
                )))
            }
        };
        Ok(UnpoolPlan {
            inferred,
            out,
            strides: strides.iter().map(|&s| s as usize).collect(),
            pads: pads[..n].iter().map(|&p| p as usize).collect(),
        })
    }

    /// Elements in one (n, c) plane of the indexed shape.
    pub fn plane(&self) -> usize {
        self.inferred[2..].iter().product()
    }

    /// Elements the indices address.
    pub fn numel(&self) -> usize {
        self.inferred.iter().product()
    }

    /// Zeros after the indexed shape per spatial axis, up to `out`.
    pub fn extra(&self) -> Vec<usize> {
        self.out[2..]
            .iter()
            .zip(&self.inferred[2..])
            .map(|(o, i)| o - i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::window::tests::with;

    #[test]
    fn lppool_p_is_float_at_1_and_int_later() {
        let k = || ("kernel_shape", Attr::Ints(vec![2]));
        let a = with("LpPool", 1, vec![k(), ("p", Attr::Float(3.0))], |c| {
            LpPoolAttrs::decode(c, &[1, 1, 4])
        })
        .unwrap();
        assert_eq!((a.p, a.window.out.clone()), (3.0, vec![3]));
        let a = with("LpPool", 18, vec![k(), ("p", Attr::Int(1))], |c| {
            LpPoolAttrs::decode(c, &[1, 1, 4])
        })
        .unwrap();
        assert_eq!(a.p, 1.0);
        let early = with("LpPool", 11, vec![k(), ("ceil_mode", Attr::Int(1))], |c| {
            LpPoolAttrs::decode(c, &[1, 1, 4])
        });
        assert!(early.is_err());
    }

    #[test]
    fn lppool_zero_pads_cover_every_strided_tap() {
        // in 5, k 2, s 2, dilation 2: ek 3, out 2; taps start at 0 and 2 and
        // read 2·2 = 4 elements each: length 6, one zero after.
        let attrs = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("strides", Attr::Ints(vec![2])),
            ("dilations", Attr::Ints(vec![2])),
        ];
        let a = with("LpPool", 18, attrs, |c| LpPoolAttrs::decode(c, &[1, 1, 5])).unwrap();
        assert_eq!(a.window.out, vec![2]);
        assert_eq!(a.zero_pads(&[5]), vec![(0, 1)]);
        assert_eq!(a.taps(), vec![vec![0], vec![2]]);
    }

    #[test]
    fn unpool_default_and_given_output_shape() {
        let attrs = || {
            vec![
                ("kernel_shape", Attr::Ints(vec![2, 2])),
                ("strides", Attr::Ints(vec![2, 2])),
            ]
        };
        let p = with("MaxUnpool", 11, attrs(), |c| {
            UnpoolPlan::decode(c, &[1, 1, 2, 2], &[1, 1, 2, 2], None)
        })
        .unwrap();
        assert_eq!((p.out.clone(), p.plane()), (vec![1, 1, 4, 4], 16));
        let p = with("MaxUnpool", 11, attrs(), |c| {
            UnpoolPlan::decode(c, &[1, 1, 2, 2], &[1, 1, 2, 2], Some(vec![1, 1, 5, 5]))
        })
        .unwrap();
        assert_eq!((p.numel(), p.extra()), (16, vec![1, 1]));
        let bad = with("MaxUnpool", 11, attrs(), |c| {
            UnpoolPlan::decode(c, &[1, 1, 2, 2], &[1, 1, 2, 3], None)
        });
        assert!(bad.is_err());
        let small = with("MaxUnpool", 11, attrs(), |c| {
            UnpoolPlan::decode(c, &[1, 1, 2, 2], &[1, 1, 2, 2], Some(vec![1, 1, 3, 4]))
        });
        assert!(small.is_err());
    }
}
