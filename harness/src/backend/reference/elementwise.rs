//! Reference ops: elementwise arithmetic and activations.
//!
//! They are the bulk of every graph and the place where frameworks differ in
//! the last bits (erf/tanh approximations, integer wrap-around and division),
//! so each is written straight from its formula in f64, with integer inputs
//! kept in their exact fixed-width type. Binary ops follow ONNX
//! multidirectional broadcasting
//! (<https://onnx.ai/onnx/repo-docs/Broadcasting.html>).

use ndarray::ArrayD;

use super::shape::{arr, float_to, wide_ints, Pick};
use super::util::broadcast_map;
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::tensor::{Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

/// Integer arithmetic the spec defines on fixed-width types.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// A fixed-width integer element: wrapping arithmetic, truncating division.
pub(super) trait IntElem: Pick + Ord {
    /// `None` only for division by zero.
    fn arith(self, op: Arith, o: Self) -> Option<Self>;
    fn neg_w(self) -> Self;
    fn abs_w(self) -> Self;
    fn wide(self) -> i128;
    /// C-cast semantics (keeps the low bits).
    fn narrow(v: i128) -> Self;
}

macro_rules! int_elem {
    ($($t:ty: $abs:expr),*) => {$(
        impl IntElem for $t {
            #[inline]
            fn arith(self, op: Arith, o: Self) -> Option<Self> {
                Some(match op {
                    Arith::Add => self.wrapping_add(o),
                    Arith::Sub => self.wrapping_sub(o),
                    Arith::Mul => self.wrapping_mul(o),
                    Arith::Div if o == 0 => return None,
                    // Rust's `/` truncates toward zero, as C and ONNX Runtime do; MIN/-1 wraps.
                    Arith::Div => self.wrapping_div(o),
                })
            }
            fn neg_w(self) -> Self {
                self.wrapping_neg()
            }
            fn abs_w(self) -> Self {
                let f: fn($t) -> $t = $abs;
                f(self)
            }
            fn wide(self) -> i128 {
                self as i128
            }
            fn narrow(v: i128) -> Self {
                v as $t
            }
        }
    )*};
}
int_elem!(i8: |v| v.wrapping_abs(), i16: |v| v.wrapping_abs(), i32: |v| v.wrapping_abs(),
          i64: |v| v.wrapping_abs(), u8: |v| v, u16: |v| v, u32: |v| v, u64: |v| v);

pub fn register(r: &mut OpRegistry<RefTensor>) {
    fn since(
        r: &mut OpRegistry<RefTensor>,
        op: &'static str,
        since: u32,
        until: u32,
        run: OpFn<RefTensor>,
        spec: &'static str,
    ) {
        r.range(op, since, until, run, spec, SPEC);
    }
    r.op(
        "Add",
        add,
        "https://onnx.ai/onnx/operators/onnx__Add.html",
        SPEC,
    );
    r.op(
        "Sub",
        sub,
        "https://onnx.ai/onnx/operators/onnx__Sub.html",
        SPEC,
    );
    r.op(
        "Mul",
        mul,
        "https://onnx.ai/onnx/operators/onnx__Mul.html",
        SPEC,
    );
    r.op(
        "Div",
        div,
        "https://onnx.ai/onnx/operators/onnx__Div.html",
        SPEC,
    );
    r.op(
        "Pow",
        pow,
        "https://onnx.ai/onnx/operators/onnx__Pow.html",
        SPEC,
    );
    r.op(
        "Sqrt",
        sqrt,
        "https://onnx.ai/onnx/operators/onnx__Sqrt.html",
        SPEC,
    );
    r.op(
        "Exp",
        exp,
        "https://onnx.ai/onnx/operators/onnx__Exp.html",
        SPEC,
    );
    r.op(
        "Log",
        log,
        "https://onnx.ai/onnx/operators/onnx__Log.html",
        SPEC,
    );
    r.op(
        "Neg",
        neg,
        "https://onnx.ai/onnx/operators/onnx__Neg.html",
        SPEC,
    );
    r.op(
        "Abs",
        abs,
        "https://onnx.ai/onnx/operators/onnx__Abs.html",
        SPEC,
    );
    r.op(
        "Erf",
        erf,
        "https://onnx.ai/onnx/operators/onnx__Erf.html",
        SPEC,
    );
    r.op(
        "Relu",
        relu,
        "https://onnx.ai/onnx/operators/onnx__Relu.html",
        SPEC,
    );
    r.op(
        "LeakyRelu",
        leaky_relu,
        "https://onnx.ai/onnx/operators/onnx__LeakyRelu.html",
        SPEC,
    );
    r.op(
        "Sigmoid",
        sigmoid,
        "https://onnx.ai/onnx/operators/onnx__Sigmoid.html",
        SPEC,
    );
    r.op(
        "HardSigmoid",
        hard_sigmoid,
        "https://onnx.ai/onnx/operators/onnx__HardSigmoid.html",
        SPEC,
    );
    since(
        r,
        "HardSwish",
        14,
        u32::MAX,
        hard_swish,
        "https://onnx.ai/onnx/operators/onnx__HardSwish.html",
    );
    r.op(
        "Tanh",
        tanh,
        "https://onnx.ai/onnx/operators/onnx__Tanh.html",
        SPEC,
    );
    since(
        r,
        "Gelu",
        20,
        u32::MAX,
        gelu,
        "https://onnx.ai/onnx/operators/onnx__Gelu.html",
    );
    since(
        r,
        "Clip",
        1,
        10,
        clip,
        "https://onnx.ai/onnx/operators/onnx__Clip.html",
    );
    since(
        r,
        "Clip",
        11,
        u32::MAX,
        clip,
        "https://onnx.ai/onnx/operators/onnx__Clip.html",
    );
}

fn int_arith<T: IntElem>(ctx: &OpCtx, a: &Tensor, b: &Tensor, op: Arith) -> OpResult<Tensor> {
    let (p, q) = (arr::<T>(a), arr::<T>(b));
    if matches!(op, Arith::Div) && !p.is_empty() && q.iter().any(|v| v.wide() == 0) {
        return Err(ctx.fail("Div: integer division by zero (input `B` holds 0)"));
    }
    Ok(T::wrap(broadcast_map(p, q, |u, v| {
        u.arith(op, v).unwrap_or(u)
    })?))
}

/// The shared body of Add/Sub/Mul/Div: f64 for floats, wrapping ints.
fn binary(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
    op: Arith,
    f: fn(f64, f64) -> f64,
) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let out = match (&a.data, &b.data) {
        (Tensor::F64(p), Tensor::F64(q)) => Tensor::F64(broadcast_map(p, q, f)?),
        (pa, pb) if pa.dtype() == pb.dtype() => {
            by_dtype!(ints pa.dtype(), T => int_arith::<T>(ctx, pa, pb, op)?,
            _ => return Err(ctx.fail(format!("{op:?} of {} and {}", a.dtype, b.dtype))))
        }
        _ => {
            return Err(ctx.fail(format!(
                "{op:?}: inputs `A` ({}) and `B` ({}) must share a dtype",
                a.dtype, b.dtype
            )))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// Add-7/13/14: C = A + B with broadcasting; integers wrap.
fn add(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    binary(ctx, x, Arith::Add, |u, v| u + v)
}

/// Sub-7/13/14: C = A - B with broadcasting; integers wrap.
fn sub(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    binary(ctx, x, Arith::Sub, |u, v| u - v)
}

/// Mul-7/13/14: C = A * B with broadcasting; integers wrap.
fn mul(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    binary(ctx, x, Arith::Mul, |u, v| u * v)
}

/// Div-7/13/14: C = A / B with broadcasting; integers truncate toward zero,
/// integer division by zero fails.
fn div(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    binary(ctx, x, Arith::Div, |u, v| u / v)
}

/// b^e on a fixed-width integer, wrapping; a negative exponent gives the
/// truncated 1/b^|e| (1 for b = 1, ±1 for b = -1, else 0; 0^-n gives 0).
fn int_pow<T: IntElem>(b: T, e: i128) -> T {
    let one = T::narrow(1);
    if e < 0 {
        return match b.wide() {
            1 => one,
            -1 if e % 2 != 0 => b,
            -1 => one,
            _ => T::narrow(0),
        };
    }
    let (mut acc, mut base, mut e) = (one, b, e);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.arith(Arith::Mul, base).expect("no division");
        }
        base = base.arith(Arith::Mul, base).expect("no division");
        e >>= 1;
    }
    acc
}

/// Pow-7/12/13/15: Z = X ^ Y with broadcasting; the output has X's dtype.
/// Float base: powf in f64 (an integer exponent is converted exactly).
/// Integer base with float exponent: powf in f64, then truncated to the base
/// dtype like Cast (numpy `power(...).astype`). Integer base and exponent:
/// exact wrapping integer power.
fn pow(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let exp_f = || -> OpResult<ArrayD<f64>> {
        match &b.data {
            Tensor::F64(q) => Ok(q.clone()),
            t => Ok(wide_ints(t)
                .ok_or_else(|| ctx.fail(format!("input `Y` has dtype {}", b.dtype)))?
                .mapv(|v| v as f64)),
        }
    };
    let out = match &a.data {
        Tensor::F64(p) => Tensor::F64(broadcast_map(p, &exp_f()?, f64::powf)?),
        t if b.is_float() => {
            let base =
                wide_ints(t).ok_or_else(|| ctx.fail(format!("input `X` has dtype {}", a.dtype)))?;
            float_to(
                &broadcast_map(&base, &exp_f()?, |u, v| (u as f64).powf(v))?,
                t.dtype(),
            )
        }
        t => {
            let e = wide_ints(&b.data)
                .ok_or_else(|| ctx.fail(format!("input `Y` has dtype {}", b.dtype)))?;
            by_dtype!(ints t.dtype(), T => T::wrap(broadcast_map(arr::<T>(t), &e, int_pow::<T>)?),
                _ => return Err(ctx.fail(format!("input `X` has dtype {}", a.dtype))))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// A float-only unary op applied in f64.
pub(super) fn unary(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
    f: impl Fn(f64) -> f64,
) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let out = Tensor::F64(
        a.f64()
            .map_err(|_| ctx.fail(format!("input `X` must be a float tensor, got {}", a.dtype)))?
            .mapv(f),
    );
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

fn int_map<T: IntElem>(t: &Tensor, f: impl Fn(T) -> T) -> Tensor {
    T::wrap(arr::<T>(t).mapv(f))
}

/// Sqrt-6/13: √x (NaN for x < 0).
fn sqrt(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, f64::sqrt)
}

/// Exp-6/13: eˣ.
fn exp(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, f64::exp)
}

/// Log-6/13: ln x (−inf at 0, NaN below).
fn log(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, f64::ln)
}

/// Neg-6/13: −x; signed integers wrap (−MIN = MIN).
fn neg(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let out = match &a.data {
        Tensor::F64(p) => Tensor::F64(p.mapv(|v| -v)),
        t => {
            by_dtype!(ints t.dtype(), T => int_map::<T>(t, T::neg_w), _ => return Err(ctx.fail(format!("Neg of {}", a.dtype))))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// Abs-6/13: |x|; signed integers wrap (|MIN| = MIN), unsigned unchanged.
fn abs(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let out = match &a.data {
        Tensor::F64(p) => Tensor::F64(p.mapv(f64::abs)),
        t => {
            by_dtype!(ints t.dtype(), T => int_map::<T>(t, T::abs_w), _ => return Err(ctx.fail(format!("Abs of {}", a.dtype))))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// Erf-9/13: the error function (`libm::erf`).
fn erf(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, libm::erf)
}

/// Relu-6/13/14: max(0, x) (NaN stays NaN); integers since 14.
fn relu(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let out = match &a.data {
        Tensor::F64(p) => Tensor::F64(p.mapv(|v| if v < 0.0 { 0.0 } else { v })),
        t => {
            by_dtype!(ints t.dtype(), T => int_map::<T>(t, |v| v.max(T::narrow(0))), _ => return Err(ctx.fail(format!("Relu of {}", a.dtype))))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// LeakyRelu-6/16: x < 0 ? alpha·x : x (alpha default 0.01).
fn leaky_relu(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let alpha = ctx.float("alpha", 0.01)? as f64;
    unary(ctx, x, |v| if v < 0.0 { alpha * v } else { v })
}

/// Sigmoid-6/13: 1/(1+e^-x), evaluated without overflow for large |x|.
fn sigmoid(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, sigmoid_f)
}

pub(super) fn sigmoid_f(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// min(1, max(0, v)) keeping NaN.
fn clamp01(v: f64) -> f64 {
    if v.is_nan() {
        v
    } else {
        v.clamp(0.0, 1.0)
    }
}

/// HardSigmoid-6/22: max(0, min(1, alpha·x + beta)), alpha 0.2, beta 0.5.
fn hard_sigmoid(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let alpha = ctx.float("alpha", 0.2)? as f64;
    let beta = ctx.float("beta", 0.5)? as f64;
    unary(ctx, x, |v| clamp01(alpha * v + beta))
}

/// HardSwish-14/22: x · max(0, min(1, x/6 + 1/2)).
fn hard_swish(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, |v| v * clamp01(v / 6.0 + 0.5))
}

/// Tanh-6/13: tanh x.
fn tanh(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    unary(ctx, x, f64::tanh)
}

/// Gelu-20: approximate="none": x/2·(1+erf(x/√2)); "tanh": x/2·(1+tanh(√(2/π)·(x+0.044715x³))).
fn gelu(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    match ctx.string("approximate", "none")?.as_str() {
        "none" => unary(ctx, x, |v| {
            0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))
        }),
        "tanh" => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            unary(ctx, x, move |v| {
                0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
            })
        }
        other => Err(ctx.fail(format!(
            "attribute `approximate`: unknown value `{other}` (none|tanh)"
        ))),
    }
}

/// The scalar of an optional Clip bound input, exactly (i128 for ints).
fn bound(ctx: &OpCtx, x: &[Option<&RefTensor>], i: usize, name: &str) -> OpResult<Option<Tensor>> {
    match x.get(i).copied().flatten() {
        None => Ok(None),
        Some(t) if t.data.len() == 1 => Ok(Some(t.data.clone())),
        Some(t) if t.data.is_empty() => Ok(None),
        Some(t) => Err(ctx.fail(format!(
            "input `{name}` must be a scalar, has shape {:?}",
            t.shape()
        ))),
    }
}

/// Clip-6 (min/max attributes), Clip-11/12/13 (optional min/max inputs; ints
/// since 12): min(max(x, min), max), so min > max gives max everywhere; NaN stays NaN.
fn clip(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let (lo, hi) = if ctx.opset < 11 {
        let f = |n: &str, d: f32| -> OpResult<Option<Tensor>> {
            Ok(Some(Tensor::F64(ArrayD::from_elem(
                ndarray::IxDyn(&[]),
                ctx.float(n, d)? as f64,
            ))))
        };
        (f("min", f32::MIN)?, f("max", f32::MAX)?)
    } else {
        (bound(ctx, x, 1, "min")?, bound(ctx, x, 2, "max")?)
    };
    let out = match &a.data {
        Tensor::F64(p) => {
            let get = |t: &Option<Tensor>, d: f64| t.as_ref().map_or(d, |t| t.to_f64_vec()[0]);
            let (lo, hi) = (get(&lo, f64::NEG_INFINITY), get(&hi, f64::INFINITY));
            Tensor::F64(p.mapv(|v| if v.is_nan() { v } else { v.max(lo).min(hi) }))
        }
        t => {
            let get = |b: &Option<Tensor>, n: &str| -> OpResult<Option<i128>> {
                match b {
                    None => Ok(None),
                    Some(b) => Ok(Some(
                        wide_ints(b)
                            .ok_or_else(|| {
                                ctx.fail(format!("input `{n}` must match the int input"))
                            })?
                            .iter()
                            .copied()
                            .next()
                            .expect("scalar"),
                    )),
                }
            };
            let (lo, hi) = (get(&lo, "min")?, get(&hi, "max")?);
            by_dtype!(ints t.dtype(), T => int_map::<T>(t, |v| {
                let mut w = v.wide();
                if let Some(l) = lo { w = w.max(l); }
                if let Some(h) = hi { w = w.min(h); }
                T::narrow(w)
            }), _ => return Err(ctx.fail(format!("Clip of {}", a.dtype))))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::backend::interp::OpError;
    use crate::graph::Attr;
    use crate::tensor::DType;
    use ndarray::IxDyn;

    fn run(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        ins: &[Option<&RefTensor>],
    ) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, opset, ins).unwrap().remove(0).unwrap()
    }
    fn vals(t: &RefTensor) -> Vec<f64> {
        t.data.to_f64_vec()
    }
    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn integer_div_truncates_and_rejects_zero() {
        let a = i(&[4], &[7, -7, 7, -7]);
        let b = i(&[4], &[2, 2, -2, -2]);
        assert_eq!(
            vals(&run("Div", 14, vec![], &[Some(&a), Some(&b)])),
            vec![3., -3., -3., 3.]
        );
        let z = i(&[1], &[0]);
        let node = test_node("Div", 2, 1, vec![]);
        assert!(matches!(
            run_op(&node, 14, &[Some(&a), Some(&z)]),
            Err(OpError::Failed(_))
        ));
    }

    #[test]
    fn uint8_wraps_and_broadcasts() {
        let a = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![250, 3]).unwrap(),
        ));
        let b = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![10, 4]).unwrap(),
        ));
        let y = run("Add", 14, vec![], &[Some(&a), Some(&b)]);
        assert_eq!(y.dtype, DType::U8);
        assert_eq!(vals(&y), vec![4., 254., 13., 7.]);
        assert_eq!(
            vals(&run("Sub", 14, vec![], &[Some(&b), Some(&a)])),
            vec![16., 10., 7., 1.]
        );
    }

    #[test]
    fn pow_mixed_types() {
        let xi = RefTensor::exact(Tensor::I32(
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![1, 2, 3]).unwrap(),
        ));
        let yf = f(&[3], &[4., 0.5, -1.]);
        let y = run("Pow", 15, vec![], &[Some(&xi), Some(&yf)]);
        // 2^0.5 = 1.41 -> 1, 3^-1 = 0.33 -> 0
        assert_eq!((y.dtype, vals(&y)), (DType::I32, vec![1., 1., 0.]));
        let xf = f(&[3], &[1.5, 2., -2.]);
        let yi = i(&[3], &[2, -1, 3]);
        let y = run("Pow", 15, vec![], &[Some(&xf), Some(&yi)]);
        assert_eq!((y.dtype, vals(&y)), (DType::F32, vec![2.25, 0.5, -8.]));
        let y = run(
            "Pow",
            15,
            vec![],
            &[Some(&i(&[2], &[3, -2])), Some(&i(&[2], &[41, 3]))],
        );
        // 3^41 wraps in int64: 36472996377170786403 mod 2^64
        assert_eq!(
            y.data,
            Tensor::I64(
                ArrayD::from_shape_vec(
                    IxDyn(&[2]),
                    vec![(36472996377170786403u128 % (1u128 << 64)) as u64 as i64, -8]
                )
                .unwrap()
            )
        );
    }

    #[test]
    fn clip_min_above_max_and_attrs() {
        let x = f(&[4], &[-3., 0.5, 2., f64::NAN]);
        let (lo, hi) = (f(&[], &[1.]), f(&[], &[0.]));
        let y = vals(&run("Clip", 13, vec![], &[Some(&x), Some(&lo), Some(&hi)]));
        assert_eq!(&y[..3], &[0., 0., 0.]);
        assert!(y[3].is_nan());
        let y = vals(&run(
            "Clip",
            6,
            vec![("min", Attr::Float(-1.0))],
            &[Some(&x)],
        ));
        assert_eq!(&y[..3], &[-1., 0.5, 2.]);
        let y = vals(&run(
            "Clip",
            13,
            vec![],
            &[Some(&x), None, Some(&f(&[], &[1.]))],
        ));
        assert_eq!(&y[..3], &[-3., 0.5, 1.]);
        let xi = i(&[3], &[-5, 5, 50]);
        let y = run(
            "Clip",
            13,
            vec![],
            &[Some(&xi), Some(&i(&[], &[0])), Some(&i(&[], &[10]))],
        );
        assert_eq!(vals(&y), vec![0., 5., 10.]);
    }

    #[test]
    fn gelu_tanh_vs_none() {
        let x = f(&[3], &[-1., 0.5, 2.]);
        // numpy: 0.5*x*(1+erf(x/sqrt(2)))
        close(
            &vals(&run("Gelu", 20, vec![], &[Some(&x)])),
            &[
                -0.15865525393145707,
                0.34573123063700656,
                1.9544997361036416,
            ],
        );
        let y = run(
            "Gelu",
            20,
            vec![("approximate", Attr::String("tanh".into()))],
            &[Some(&x)],
        );
        close(
            &vals(&y),
            &[-0.15880800939172324, 0.34571400982514394, 1.954597694087775],
        );
    }

    #[test]
    fn hard_sigmoid_defaults_and_activations() {
        let x = f(&[4], &[-3., 0., 1., 3.]);
        // alpha is the f32 0.2
        let a = 0.2f32 as f64;
        close(
            &vals(&run("HardSigmoid", 6, vec![], &[Some(&x)])),
            &[0., 0.5, a + 0.5, 1.],
        );
        close(
            &vals(&run("HardSwish", 14, vec![], &[Some(&x)])),
            &[0., 0., 2. / 3., 3.],
        );
        close(
            &vals(&run("LeakyRelu", 16, vec![], &[Some(&x)])),
            &[-3. * (0.01f32 as f64), 0., 1., 3.],
        );
        close(
            &vals(&run("Sigmoid", 13, vec![], &[Some(&f(&[2], &[-800., 0.]))])),
            &[0., 0.5],
        );
        close(
            &vals(&run("Erf", 13, vec![], &[Some(&f(&[1], &[0.5]))])),
            &[0.5204998778130465],
        );
        let n = run("Neg", 13, vec![], &[Some(&i(&[1], &[i64::MIN]))]);
        assert_eq!(
            n.data,
            Tensor::I64(ArrayD::from_elem(IxDyn(&[1]), i64::MIN))
        );
    }
}
