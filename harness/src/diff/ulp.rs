//! Distance in units in the last place, the one definition every
//! comparison uses (the diff's `max_ulp`, the fingerprint's [`SameValue`]).
//!
//! [`SameValue`]: super::SameValue

use half::{bf16, f16};

use crate::tensor::DType;

/// A float32's place on the integer line: its bits, negated below zero
/// (so -0 and +0 meet, and adjacent floats are adjacent integers).
#[inline(always)]
fn ordered_f32(x: f32) -> i64 {
    let bits = x.to_bits();
    let mag = (bits & 0x7fff_ffff) as i64;
    if bits >> 31 != 0 {
        -mag
    } else {
        mag
    }
}

/// ULP distance of two float32s, by integer reinterpretation.
#[inline(always)]
pub(super) fn ulp_f32(x: f32, y: f32) -> u64 {
    ordered_f32(x).abs_diff(ordered_f32(y))
}

/// [`ulp_f32`] in float64 arithmetic: both places lie within ±2^31, so
/// their difference is exact in f64, and a vector unit computes this form
/// without 64-bit integer compares (the fused pass's float32 maximum).
#[inline(always)]
pub(super) fn ulp_f32_wide(x: f32, y: f32) -> f64 {
    let place = |v: f32| -> f64 {
        let bits = v.to_bits() as i32;
        let mag = bits & 0x7fff_ffff;
        f64::from(if bits < 0 { -mag } else { mag })
    };
    (place(x) - place(y)).abs()
}

#[inline]
pub(super) fn ulp_f64(a: f64, b: f64) -> u64 {
    let o = |v: f64| -> i128 {
        if v.is_sign_negative() {
            -(v.abs().to_bits() as i128)
        } else {
            v.to_bits() as i128
        }
    };
    (o(a) - o(b)).unsigned_abs().min(u64::MAX as u128) as u64
}

#[inline]
pub(super) fn ulp_half(a: f64, b: f64, to_bits: fn(f64) -> u16) -> u64 {
    let o = |v: f64| -> i64 {
        let bits = to_bits(v.abs()) as i64;
        if v.is_sign_negative() {
            -bits
        } else {
            bits
        }
    };
    o(a).abs_diff(o(b))
}

/// Integers and bools: the distance itself (saturating).
#[inline(always)]
pub(super) fn ulp_int(a: f64, b: f64) -> u64 {
    (a - b).abs().min(u64::MAX as f64) as u64
}

/// ULP distance between a backend value and the reference rounded to `dtype`.
pub fn ulp(dtype: DType, got: f64, want: f64) -> u64 {
    match dtype {
        DType::F32 => ulp_f32(got as f32, want as f32),
        DType::F64 => ulp_f64(got, want),
        DType::F16 => ulp_half(got, want, |v| f16::from_f64(v).to_bits()),
        DType::BF16 => ulp_half(got, want, |v| bf16::from_f64(v).to_bits()),
        _ => ulp_int(got, want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_counts_across_zero_and_per_dtype() {
        let up = |x: f32, k: u32| f32::from_bits(x.to_bits() + k) as f64;
        assert_eq!(ulp(DType::F32, up(1.0, 3), 1.0), 3);
        // -0 and +0 are the same place; the smallest subnormals straddle it.
        assert_eq!(ulp(DType::F32, -0.0, 0.0), 0);
        assert_eq!(ulp(DType::F32, -up(0.0, 1), up(0.0, 1)), 2);
        assert_eq!(ulp(DType::F64, 1.0, 1.0 + f64::EPSILON), 1);
        assert_eq!(ulp(DType::F16, 1.0, 1.0 + 2f64.powi(-10)), 1);
        assert_eq!(ulp(DType::I32, 7.0, 3.0), 4);
    }

    #[test]
    fn the_wide_f32_distance_is_the_integer_one() {
        // Every sign, the range ends, NaN and Inf bit patterns, and a sweep.
        let mut bits: Vec<u32> = vec![0, 1, 0x7f7f_ffff, 0x7f80_0000, 0x7fff_ffff, 0x3f80_0000];
        bits.extend((0..4096u32).map(|k| k.wrapping_mul(0x9e37_79b9)));
        bits.extend(bits.clone().iter().map(|b| b | 0x8000_0000));
        for &x in &bits {
            for &y in bits.iter().step_by(7) {
                let (x, y) = (f32::from_bits(x), f32::from_bits(y));
                assert_eq!(ulp_f32_wide(x, y) as u64, ulp_f32(x, y), "{x:e} {y:e}");
            }
        }
    }
}
