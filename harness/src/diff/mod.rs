//! Comparing one backend's tensor with the reference's, in one streaming pass.
//!
//! Neither side is widened to a float64 copy: both are walked together, each
//! element converted on the fly, and every metric (max abs/rel error,
//! mismatches under `|a-b| <= atol + rtol*|ref|`, max ULP distance in the
//! backend's dtype, cosine similarity, NaN/Inf disagreement) accumulated at
//! once.
//!
//! The tolerance classes ([`tolerance`]) and the ULP distance ([`ulp`]) live
//! here too, so the per-node diff and the fingerprint judge "close enough"
//! by the same rules.

pub mod bound;
mod fused;
pub mod tolerance;
mod ulp;

use std::any::Any;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::tensor::{DType, Tensor};

pub use bound::{Bound, Class};
pub use fused::{Allowance, PerElement};
pub use tolerance::{SameValue, Tolerance, Tolerances};
pub use ulp::ulp;

/// Metrics of one comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub count: usize,
    #[serde(deserialize_with = "crate::json_float::f64_or_nan")]
    pub max_abs: f64,
    #[serde(deserialize_with = "crate::json_float::f64_or_nan")]
    pub max_rel: f64,
    pub mismatches: usize,
    #[serde(deserialize_with = "crate::json_float::f64_or_nan")]
    pub mismatch_fraction: f64,
    /// Max distance in units in the last place of the backend's dtype (ints: |a-b|).
    pub max_ulp: u64,
    #[serde(deserialize_with = "crate::json_float::f64_or_nan")]
    pub cosine: f64,
    /// Elements where exactly one side is NaN.
    pub nan_mismatches: usize,
    /// Elements where the sides disagree on being infinite (or on its sign).
    pub inf_mismatches: usize,
    /// Flat index of the worst element (largest excess over tolerance).
    pub worst_index: Option<usize>,
    pub worst_value: Option<f64>,
    pub worst_reference: Option<f64>,
    /// Local comparisons only: the largest ratio of an element's error to
    /// its bound (docs/tolerance.md); above 1 the node exceeded its bound.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json_float::some_f64_or_nan"
    )]
    pub bound_ratio: Option<f64>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Comparison {
    Metrics(Metrics),
    ShapeMismatch { got: Vec<usize>, want: Vec<usize> },
    DtypeMismatch { got: DType, want: DType },
}

impl Comparison {
    /// Within tolerance everywhere, same shape and dtype.
    pub fn ok(&self) -> bool {
        matches!(self, Comparison::Metrics(m) if m.mismatches == 0)
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        match self {
            Comparison::Metrics(m) => Some(m),
            _ => None,
        }
    }
}

/// The smallest magnitude that rounds to infinity in `dtype` (the largest
/// finite value plus half an ulp); infinite for f64 and integers. A float64
/// reference value past it is an overflow in the lane's dtype: the spec's
/// float32 result is ±Inf there (Exp(89), 1 / a subnormal), so the
/// reference is compared as that infinity.
pub fn overflow(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2f64.powi(128) * (1.0 - 2f64.powi(-25)),
        DType::F16 => 65520.0,
        DType::BF16 => 2f64.powi(128) * (1.0 - 2f64.powi(-9)),
        _ => f64::INFINITY,
    }
}

/// The largest magnitude that rounds to zero in `dtype` (half its smallest
/// subnormal, a tie that rounds to the even zero); 0 for f64 and integers.
/// A float64 reference value at or below it is an underflow in the lane's
/// dtype: the spec's float32 result is ±0 there (the product of two
/// subnormals), so the reference is compared as that zero.
pub fn underflow(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2f64.powi(-150),
        DType::F16 => 2f64.powi(-25),
        DType::BF16 => 2f64.powi(-134),
        _ => 0.0,
    }
}

/// The fused pass over `got` and `want`, their dtypes matched once.
fn tally(got: &Tensor, want: &Tensor, allowed: &impl fused::Allowance) -> fused::Tally {
    let range = fused::Range {
        overflow: overflow(got.dtype()),
        underflow: underflow(got.dtype()),
    };
    crate::with_array!(got, a => against(a, want, range, allowed))
}

/// The lane array `a` against `want`: a reference of the lane's own dtype or
/// float64 is walked as it is; any other (no caller makes one) as its
/// float64 values, the values an element-by-element walk converts to.
fn against<A: fused::Lane>(
    a: &ArrayD<A>,
    want: &Tensor,
    range: fused::Range,
    allowed: &impl fused::Allowance,
) -> fused::Tally {
    let a = a.as_standard_layout();
    let a = a.as_slice().expect("standard layout");
    if let Tensor::F64(b) = want {
        let b = b.as_standard_layout();
        return fused::tally(a, b.as_slice().expect("standard layout"), range, allowed);
    }
    let same: &dyn Any = crate::with_array!(want, b => b);
    if let Some(b) = same.downcast_ref::<ArrayD<A>>() {
        let b = b.as_standard_layout();
        return fused::tally(a, b.as_slice().expect("standard layout"), range, allowed);
    }
    fused::tally(a, &want.to_f64_vec(), range, allowed)
}

/// Compares `got` (a backend's output, dtype `got.dtype()`) with `want` (the
/// reference's, whose ONNX dtype is `want_dtype`) under `tol`.
pub fn compare(got: &Tensor, want: &Tensor, want_dtype: DType, tol: Tolerance) -> Comparison {
    let allowed = |_: usize, r: f64| tol.allowed(r);
    let (c, _) = compare_within(got, want, want_dtype, allowed);
    c
}

/// Compares `got` with `want` (ONNX dtype `want_dtype`), element `i` with
/// reference value `r` allowed an error of `allowed(i, r)`; returns the
/// comparison and the largest ratio of an element's error to its allowance
/// (0 when every element agrees exactly, infinite past a zero allowance).
pub fn compare_within(
    got: &Tensor,
    want: &Tensor,
    want_dtype: DType,
    allowed: impl fused::Allowance,
) -> (Comparison, f64) {
    if got.shape() != want.shape() {
        let c = Comparison::ShapeMismatch {
            got: got.shape().to_vec(),
            want: want.shape().to_vec(),
        };
        return (c, f64::INFINITY);
    }
    if got.dtype() != want_dtype {
        let c = Comparison::DtypeMismatch {
            got: got.dtype(),
            want: want_dtype,
        };
        return (c, f64::INFINITY);
    }
    let count = got.len();
    let t = tally(got, want, &allowed);
    let (worst_index, worst_value, worst_reference) = match t.worst {
        Some((i, a, r)) => (Some(i), Some(a), Some(r)),
        None => (None, None, None),
    };
    let (dot, na, nb) = t.sums.total();
    let m = Metrics {
        count,
        max_abs: t.max_abs,
        max_rel: t.max_rel,
        mismatches: t.mismatches,
        mismatch_fraction: if count == 0 {
            0.0
        } else {
            t.mismatches as f64 / count as f64
        },
        max_ulp: t.max_ulp,
        cosine: cosine(dot, na, nb),
        nan_mismatches: t.nan_mismatches,
        inf_mismatches: t.inf_mismatches,
        worst_index,
        worst_value,
        worst_reference,
        bound_ratio: None,
    };
    (Comparison::Metrics(m), t.worst_ratio)
}

/// Cosine similarity from the dot product and the two squared norms.
fn cosine(dot: f64, na: f64, nb: f64) -> f64 {
    if na == 0.0 && nb == 0.0 {
        1.0
    } else if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };

    #[test]
    fn identical_is_ok_with_zero_ulp() {
        let a = Tensor::from_f64(DType::F32, &[3], &[1.0, -2.0, 0.5]);
        let r = Tensor::from_f64(DType::F64, &[3], &[1.0, -2.0, 0.5]);
        let c = compare(&a, &r, DType::F32, T);
        assert!(c.ok());
        assert_eq!(c.metrics().unwrap().max_ulp, 0);
        assert!((c.metrics().unwrap().cosine - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_ulp_off_in_f32() {
        let v = 1.0f32;
        let next = f32::from_bits(v.to_bits() + 1) as f64;
        let a = Tensor::from_f64(DType::F32, &[1], &[next]);
        let r = Tensor::from_f64(DType::F64, &[1], &[1.0]);
        let m = compare(&a, &r, DType::F32, T).metrics().unwrap().clone();
        assert_eq!(m.max_ulp, 1);
        assert_eq!(m.mismatches, 0);
    }

    #[test]
    fn mismatch_counts_and_worst_index() {
        let a = Tensor::from_f64(DType::F32, &[4], &[0.0, 1.0, 2.5, 3.0]);
        let r = Tensor::from_f64(DType::F64, &[4], &[0.0, 1.1, 2.0, 3.0]);
        let m = compare(&a, &r, DType::F32, T).metrics().unwrap().clone();
        assert_eq!(m.mismatches, 2);
        assert_eq!(m.worst_index, Some(2));
        assert!((m.max_abs - 0.5).abs() < 1e-6);
        assert!((m.mismatch_fraction - 0.5).abs() < 1e-12);
    }

    #[test]
    fn nan_and_inf_disagreement() {
        let a = Tensor::from_f64(DType::F32, &[3], &[f64::NAN, f64::INFINITY, f64::NAN]);
        let r = Tensor::from_f64(DType::F64, &[3], &[1.0, f64::NEG_INFINITY, f64::NAN]);
        let m = compare(&a, &r, DType::F32, T).metrics().unwrap().clone();
        assert_eq!(
            (m.nan_mismatches, m.inf_mismatches, m.mismatches),
            (1, 1, 2)
        );
    }

    #[test]
    fn a_reference_past_the_dtype_range_is_its_overflow() {
        // exp(89) = 4.5e38 > f32::MAX: the float32 result is +Inf.
        let big = 89f64.exp();
        let a = Tensor::from_f64(
            DType::F32,
            &[3],
            &[f64::INFINITY, f64::NEG_INFINITY, 3.0e38],
        );
        let r = Tensor::from_f64(DType::F64, &[3], &[big, -big, 3.0e38]);
        let m = compare(&a, &r, DType::F32, T).metrics().unwrap().clone();
        assert_eq!((m.mismatches, m.inf_mismatches), (0, 0));
        // f32::MAX itself is finite: Inf there is still a mismatch.
        let a = Tensor::from_f64(DType::F32, &[1], &[f64::INFINITY]);
        let r = Tensor::from_f64(DType::F64, &[1], &[f32::MAX as f64]);
        assert_eq!(
            compare(&a, &r, DType::F32, T)
                .metrics()
                .unwrap()
                .inf_mismatches,
            1
        );
    }

    #[test]
    fn shape_and_dtype_mismatch() {
        let a = Tensor::from_f64(DType::F32, &[2], &[0.0, 0.0]);
        let r = Tensor::from_f64(DType::F64, &[3], &[0.0, 0.0, 0.0]);
        assert!(matches!(
            compare(&a, &r, DType::F32, T),
            Comparison::ShapeMismatch { .. }
        ));
        let r2 = Tensor::from_f64(DType::F64, &[2], &[0.0, 0.0]);
        assert!(matches!(
            compare(&a, &r2, DType::F16, T),
            Comparison::DtypeMismatch { .. }
        ));
    }
}
