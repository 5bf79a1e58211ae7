//! How close is close enough: the tolerance classes every comparison in
//! xdiff uses. The per-node diff ([`super::compare`]) applies a case's
//! [`Tolerances`]; the fingerprint's "is this the same value" test uses the
//! [`SameValue`] preset. Both live here so that a new tolerance class is
//! added in one place, next to the others.

use std::collections::BTreeMap;

use crate::tensor::DType;

/// Absolute and relative tolerance: `|a - ref| <= atol + rtol * |ref|`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    /// The error allowed where the reference is `r`: `atol + rtol * |r|`.
    #[inline(always)]
    pub fn allowed(&self, r: f64) -> f64 {
        self.atol + self.rtol * r.abs()
    }

    /// Integers and bools compare exactly.
    pub const EXACT: Tolerance = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };
    /// The float32 default, also the fallback for a float dtype without a preset.
    pub const F32: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };
}

/// Named tolerance presets per dtype (like tract's `Approximation`), with
/// per-op-type overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    pub per_dtype: BTreeMap<DType, Tolerance>,
    pub per_op: BTreeMap<String, Tolerance>,
}

impl Default for Tolerances {
    fn default() -> Self {
        let per_dtype = [
            (
                DType::F64,
                Tolerance {
                    atol: 1e-10,
                    rtol: 1e-9,
                },
            ),
            (DType::F32, Tolerance::F32),
            (
                DType::F16,
                Tolerance {
                    atol: 1e-3,
                    rtol: 1e-2,
                },
            ),
            (
                DType::BF16,
                Tolerance {
                    atol: 1e-2,
                    rtol: 4e-2,
                },
            ),
        ]
        .into_iter()
        .collect();
        Tolerances {
            per_dtype,
            per_op: BTreeMap::new(),
        }
    }
}

impl Tolerances {
    /// The ONNX backend-test tolerance (`assert_allclose(rtol=1e-3, atol=1e-7)`),
    /// used for backend-test directories.
    pub fn onnx_backend_test() -> Tolerances {
        let t = Tolerance {
            atol: 1e-7,
            rtol: 1e-3,
        };
        let mut d = Tolerances::default();
        for v in d.per_dtype.values_mut() {
            *v = Tolerance {
                atol: v.atol.max(t.atol),
                rtol: v.rtol.max(t.rtol),
            };
        }
        d
    }

    /// The tolerance for an output of `op` whose dtype is `dtype`; integers and bools are exact.
    pub fn get(&self, op: &str, dtype: DType) -> Tolerance {
        // A per-op entry is the case's explicit word, integer outputs
        // included (QuantizeLinear's one step near a tie); otherwise
        // integers compare exactly.
        if let Some(t) = self.per_op.get(op) {
            return *t;
        }
        if !dtype.is_float() {
            return Tolerance::EXACT;
        }
        self.per_dtype
            .get(&dtype)
            .copied()
            .unwrap_or(Tolerance::F32)
    }
}

/// The fingerprint's "same value" preset: a backend output *equals* the
/// reference under a convention when every element is within
/// `scale · (1 + |ref|)` (a per-dtype rounding allowance), or, for float32,
/// within [`SameValue::F32_ULPS`] units in the last place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SameValue {
    dtype: DType,
    scale: f64,
}

impl SameValue {
    /// float32 values this many ULPs apart still count as the same value.
    pub const F32_ULPS: u64 = 4;

    /// The preset for a backend output of `dtype`.
    pub fn of(dtype: DType) -> SameValue {
        let scale = match dtype {
            DType::F16 => 2e-3,
            DType::BF16 => 1.6e-2,
            _ => 1e-6,
        };
        SameValue { dtype, scale }
    }

    /// Whether `got` counts as the same value as the finite reference `want`.
    pub fn holds(&self, got: f64, want: f64) -> bool {
        (got - want).abs() <= self.scale * (1.0 + want.abs())
            || (self.dtype == DType::F32 && super::ulp(DType::F32, got, want) <= Self::F32_ULPS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_exact_and_per_op_overrides_win() {
        let mut t = Tolerances::default();
        assert_eq!(t.get("Add", DType::I64), Tolerance::EXACT);
        assert_eq!(t.get("Add", DType::F32), Tolerance::F32);
        let loose = Tolerance {
            atol: 1e-2,
            rtol: 0.0,
        };
        t.per_op.insert("Resize".into(), loose);
        assert_eq!(t.get("Resize", DType::F16), loose);
        // A per-op entry is explicit: it holds for integer outputs too.
        assert_eq!(t.get("Resize", DType::U8), loose);
        assert_eq!(t.get("Add", DType::U8), Tolerance::EXACT);
        let b = Tolerances::onnx_backend_test();
        assert_eq!(b.get("Add", DType::F32).rtol, 1e-3);
    }

    #[test]
    fn same_value_is_a_rounding_allowance_plus_f32_ulps() {
        let f32v = SameValue::of(DType::F32);
        let x = 1000.0f32;
        let ulps = |k: u32| f32::from_bits(x.to_bits() + k) as f64;
        assert!(f32v.holds(ulps(4), 1000.0));
        assert!(!f32v.holds(ulps(40), 1000.0));
        // A float64 reference past the float32 range: the backend's infinity
        // is 0 ULP away in float32, and only float32 outputs get that allowance.
        assert!(f32v.holds(f64::INFINITY, 1e39));
        assert!(!SameValue::of(DType::F64).holds(f64::INFINITY, 1e39));
        assert!(SameValue::of(DType::F16).holds(1.0015, 1.0));
        assert!(!SameValue::of(DType::F16).holds(1.01, 1.0));
    }
}
