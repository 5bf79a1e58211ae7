//! The comparison's inner loop: one fused pass over two contiguous typed
//! slices (the lane's, the reference's) that tallies every metric at once.
//!
//! It exists apart from [`super::compare`] because speed and exactness pull
//! against each other here. The dtypes are matched once, outside the loop
//! (`tally::<f32, f64>` is its own monomorphised loop), and the slices are
//! walked in blocks: a branch-free pass the compiler vectorises computes a
//! block's maxima and flags whether any element is special (NaN, ±Inf) or
//! out of tolerance; only such a block is walked again by the exact scalar
//! rule ([`Tally::push`]), which counts and locates the mismatches. The
//! cosine's three sums stay sequential (one add per element, in index
//! order), so every metric is bit for bit what an element-by-element walk
//! gives; the tests pin that against a plain scalar oracle.

use half::{bf16, f16};

use super::ulp;
use crate::tensor::Element;

/// Elements per block: small enough that the block's products stay in L1,
/// large enough that the per-block bookkeeping is noise.
const BLOCK: usize = 64;

/// A lane element: converts to f64 and knows its ULP distance to a
/// (clamped, finite) float64 reference value.
pub(super) trait Lane: Element {
    /// ULP distance between `self` (whose f64 value is `a`) and `r` rounded
    /// to this dtype; the same number as [`ulp::ulp`] for this dtype.
    fn ulp_to(self, a: f64, r: f64) -> u64;
}

impl Lane for f32 {
    #[inline(always)]
    fn ulp_to(self, _: f64, r: f64) -> u64 {
        ulp::ulp_f32(self, r as f32)
    }
}

impl Lane for f64 {
    #[inline(always)]
    fn ulp_to(self, a: f64, r: f64) -> u64 {
        ulp::ulp_f64(a, r)
    }
}

impl Lane for f16 {
    #[inline(always)]
    fn ulp_to(self, a: f64, r: f64) -> u64 {
        ulp::ulp_half(a, r, |v| f16::from_f64(v).to_bits())
    }
}

impl Lane for bf16 {
    #[inline(always)]
    fn ulp_to(self, a: f64, r: f64) -> u64 {
        ulp::ulp_half(a, r, |v| bf16::from_f64(v).to_bits())
    }
}

macro_rules! int_lane {
    ($($t:ty),*) => {$(
        impl Lane for $t {
            #[inline(always)]
            fn ulp_to(self, a: f64, r: f64) -> u64 {
                ulp::ulp_int(a, r)
            }
        }
    )*};
}
int_lane!(i8, i16, i32, i64, u8, u16, u32, u64, bool);

/// Everything one pass accumulates; [`super::compare_within`] turns it into
/// [`super::Metrics`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tally {
    pub max_abs: f64,
    pub max_rel: f64,
    pub mismatches: usize,
    pub max_ulp: u64,
    pub nan_mismatches: usize,
    pub inf_mismatches: usize,
    /// Flat index, lane value and reference value of the worst mismatch.
    pub worst: Option<(usize, f64, f64)>,
    pub worst_excess: f64,
    pub worst_ratio: f64,
    pub dot: f64,
    pub na: f64,
    pub nb: f64,
}

/// The lane dtype's range: a reference magnitude at or past `overflow` is
/// compared as ±Inf, at or below `underflow` as ±0 (see [`super::overflow`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Range {
    pub overflow: f64,
    pub underflow: f64,
}

impl Range {
    #[inline(always)]
    fn clamp(self, r: f64) -> f64 {
        let m = r.abs();
        if m >= self.overflow {
            f64::INFINITY.copysign(r)
        } else if m <= self.underflow {
            0f64.copysign(r)
        } else {
            r
        }
    }
}

impl Tally {
    fn new() -> Tally {
        Tally {
            max_abs: 0.0,
            max_rel: 0.0,
            mismatches: 0,
            max_ulp: 0,
            nan_mismatches: 0,
            inf_mismatches: 0,
            worst: None,
            worst_excess: 0.0,
            worst_ratio: 0.0,
            dot: 0.0,
            na: 0.0,
            nb: 0.0,
        }
    }

    /// The exact rule for one element `i`: lane value `x` (f64 `a`),
    /// clamped reference `r`, allowed error `allowed(i, r)`.
    #[inline]
    fn push<A: Lane>(&mut self, i: usize, x: A, r: f64, allowed: &impl Fn(usize, f64) -> f64) {
        let a = x.to_f64();
        let (an, rn) = (a.is_nan(), r.is_nan());
        let mut excess = None;
        if an || rn {
            if an != rn {
                self.nan_mismatches += 1;
                excess = Some(f64::INFINITY);
            }
        } else if a.is_infinite() || r.is_infinite() {
            if a != r {
                self.inf_mismatches += 1;
                excess = Some(f64::INFINITY);
            }
        } else {
            let d = (a - r).abs();
            self.max_abs = self.max_abs.max(d);
            if r != 0.0 {
                self.max_rel = self.max_rel.max(d / r.abs());
            } else if d > 0.0 {
                self.max_rel = f64::INFINITY;
            }
            let allowed = allowed(i, r);
            if d > 0.0 {
                self.worst_ratio = self.worst_ratio.max(d / allowed);
            }
            if d > allowed {
                excess = Some(d - allowed);
            }
            self.max_ulp = self.max_ulp.max(x.ulp_to(a, r));
            self.dot += a * r;
            self.na += a * a;
            self.nb += r * r;
        }
        if let Some(excess) = excess {
            self.mismatch(i, a, r, excess);
        }
    }

    fn mismatch(&mut self, i: usize, a: f64, r: f64, excess: f64) {
        if excess.is_infinite() {
            self.worst_ratio = f64::INFINITY;
        }
        self.mismatches += 1;
        if excess > self.worst_excess || self.worst.is_none() {
            self.worst_excess = excess;
            self.worst = Some((i, a, r));
        }
    }

    /// Folds a clean block's maxima in (order-free: max of non-negatives).
    fn merge(&mut self, b: &Block) {
        self.max_abs = self.max_abs.max(b.max_abs);
        self.max_rel = self.max_rel.max(b.max_rel);
        self.worst_ratio = self.worst_ratio.max(b.ratio);
        self.max_ulp = self.max_ulp.max(b.ulp);
    }

    /// Adds a clean block's products to the cosine sums, in index order.
    fn sum(&mut self, p: &Products, n: usize) {
        for k in 0..n {
            self.dot += p.dot[k];
            self.na += p.na[k];
            self.nb += p.nb[k];
        }
    }
}

/// One block's maxima from the branch-free pass.
struct Block {
    max_abs: f64,
    max_rel: f64,
    ratio: f64,
    ulp: u64,
}

/// One block's cosine products, summed afterwards in index order.
struct Products {
    dot: [f64; BLOCK],
    na: [f64; BLOCK],
    nb: [f64; BLOCK],
}

/// The branch-free pass over one block starting at flat index `base`:
/// `None` when some element is special or out of tolerance (the block is
/// then walked by [`Tally::push`]), else its maxima with `p` filled.
#[inline(always)]
fn clean_block<A: Lane, B: Element>(
    a: &[A],
    b: &[B],
    base: usize,
    range: Range,
    allowed: &impl Fn(usize, f64) -> f64,
    p: &mut Products,
) -> Option<Block> {
    let mut blk = Block {
        max_abs: 0.0,
        max_rel: 0.0,
        ratio: 0.0,
        ulp: 0,
    };
    let mut dirty = false;
    let n = a.len().min(b.len()).min(BLOCK);
    for k in 0..n {
        let x = a[k];
        let av = x.to_f64();
        let r = range.clamp(b[k].to_f64());
        let d = (av - r).abs();
        let lim = allowed(base + k, r);
        // False for a NaN `d` or `lim` (NaN in either side makes `d` NaN).
        let within = d <= lim;
        dirty |= !within | !av.is_finite() | !r.is_finite();
        blk.max_abs = blk.max_abs.max(d);
        let rel = if r != 0.0 {
            d / r.abs()
        } else if d > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        blk.max_rel = blk.max_rel.max(rel);
        let ratio = if d > 0.0 { d / lim } else { 0.0 };
        blk.ratio = blk.ratio.max(ratio);
        blk.ulp = blk.ulp.max(x.ulp_to(av, r));
        p.dot[k] = av * r;
        p.na[k] = av * av;
        p.nb[k] = r * r;
    }
    (!dirty).then_some(blk)
}

/// Compares `a` (the lane) with `b` (the reference) element by element,
/// element `i` allowed an error of `allowed(i, r)`.
pub(super) fn tally<A: Lane, B: Element>(
    a: &[A],
    b: &[B],
    range: Range,
    allowed: &impl Fn(usize, f64) -> f64,
) -> Tally {
    let mut t = Tally::new();
    let mut p = Products {
        dot: [0.0; BLOCK],
        na: [0.0; BLOCK],
        nb: [0.0; BLOCK],
    };
    for (c, (xa, xb)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
        let base = c * BLOCK;
        match clean_block(xa, xb, base, range, allowed, &mut p) {
            Some(blk) => {
                t.merge(&blk);
                t.sum(&p, xa.len().min(xb.len()));
            }
            None => {
                for (k, (&x, &y)) in xa.iter().zip(xb).enumerate() {
                    t.push(base + k, x, range.clamp(y.to_f64()), allowed);
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    //! The fused pass pinned, metric by metric and bit for bit, against a
    //! plain element-by-element walk (the rule as written before the pass
    //! was fused), on random and adversarial inputs.
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::diff::{compare_within, overflow, ulp, underflow, Comparison, Metrics};
    use crate::tensor::{DType, Tensor};

    /// The oracle: one element at a time, every metric, no blocks.
    fn oracle(got: &Tensor, want: &Tensor, allowed: impl Fn(usize, f64) -> f64) -> (Metrics, f64) {
        let dtype = got.dtype();
        let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
        let (mut max_abs, mut max_rel, mut ratio) = (0f64, 0f64, 0f64);
        let (mut mism, mut nan, mut inf, mut max_ulp) = (0, 0, 0, 0u64);
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        let (mut worst, mut worst_excess) = (None, 0f64);
        for (i, (&a, &r)) in a.iter().zip(&b).enumerate() {
            let r = if r.abs() >= overflow(dtype) {
                f64::INFINITY.copysign(r)
            } else if r.abs() <= underflow(dtype) {
                0f64.copysign(r)
            } else {
                r
            };
            let excess = if a.is_nan() || r.is_nan() {
                nan += (a.is_nan() != r.is_nan()) as usize;
                (a.is_nan() != r.is_nan()).then_some(f64::INFINITY)
            } else if a.is_infinite() || r.is_infinite() {
                inf += (a != r) as usize;
                (a != r).then_some(f64::INFINITY)
            } else {
                let d = (a - r).abs();
                max_abs = max_abs.max(d);
                if r != 0.0 {
                    max_rel = max_rel.max(d / r.abs());
                } else if d > 0.0 {
                    max_rel = f64::INFINITY;
                }
                let lim = allowed(i, r);
                if d > 0.0 {
                    ratio = ratio.max(d / lim);
                }
                max_ulp = max_ulp.max(ulp(dtype, a, r));
                dot += a * r;
                na += a * a;
                nb += r * r;
                (d > lim).then_some(d - lim)
            };
            if let Some(e) = excess {
                if e.is_infinite() {
                    ratio = f64::INFINITY;
                }
                mism += 1;
                if e > worst_excess || worst.is_none() {
                    worst_excess = e;
                    worst = Some((i, a, r));
                }
            }
        }
        let count = a.len();
        let m = Metrics {
            count,
            max_abs,
            max_rel,
            mismatches: mism,
            mismatch_fraction: if count == 0 {
                0.0
            } else {
                mism as f64 / count as f64
            },
            max_ulp,
            cosine: super::super::cosine(dot, na, nb),
            nan_mismatches: nan,
            inf_mismatches: inf,
            worst_index: worst.map(|w| w.0),
            worst_value: worst.map(|w| w.1),
            worst_reference: worst.map(|w| w.2),
            bound_ratio: None,
        };
        (m, ratio)
    }

    /// Every float of `m` by its bits (NaN equals NaN, -0 differs from +0).
    fn bits(m: &Metrics, ratio: f64) -> Vec<u64> {
        let f = |v: Option<f64>| v.map_or(u64::MAX - 1, f64::to_bits);
        vec![
            m.count as u64,
            m.max_abs.to_bits(),
            m.max_rel.to_bits(),
            m.mismatches as u64,
            m.mismatch_fraction.to_bits(),
            m.max_ulp,
            m.cosine.to_bits(),
            m.nan_mismatches as u64,
            m.inf_mismatches as u64,
            m.worst_index.map_or(u64::MAX, |i| i as u64),
            f(m.worst_value),
            f(m.worst_reference),
            ratio.to_bits(),
        ]
    }

    fn agree(got: &Tensor, want: &Tensor, allowed: impl Fn(usize, f64) -> f64 + Copy) {
        let (c, ratio) = compare_within(got, want, got.dtype(), allowed);
        let Comparison::Metrics(m) = c else {
            panic!("not metrics: {c:?}")
        };
        let (o, oratio) = oracle(got, want, allowed);
        assert_eq!(
            bits(&m, ratio),
            bits(&o, oratio),
            "fused {m:?}\noracle {o:?}"
        );
    }

    /// Adversarial reference values: specials, signed zeros, subnormals of
    /// every lane dtype, the f32/f16 range edges and past them.
    fn adversarial() -> Vec<f64> {
        let mut v = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            1e-310,
            -1e-310,
            f32::MIN_POSITIVE as f64,
            f32::from_bits(1) as f64,
            -(f32::from_bits(1) as f64),
            2f64.powi(-150),
            2f64.powi(-151),
            -2f64.powi(-150),
            2f64.powi(-149) * 0.75,
            f32::MAX as f64,
            -(f32::MAX as f64),
            2f64.powi(128) * (1.0 - 2f64.powi(-25)),
            2f64.powi(128) * (1.0 - 2f64.powi(-24)),
            89f64.exp(),
            -89f64.exp(),
            1e300,
            65504.0,
            65519.0,
            65520.0,
            -65520.0,
            2f64.powi(-25),
            2f64.powi(-24),
            1.0,
            -1.0,
            1.0 + 1e-5 + 1e-4,
            1e-5,
        ];
        v.extend((0..8).map(|k| (k as f64 - 4.0) * 0.37));
        v
    }

    /// Lane values near `r`: equal, at the tolerance tie, just past it, one
    /// ulp off, flipped sign, special.
    fn near(rng: &mut ChaCha8Rng, r: f64) -> f64 {
        let tie = 1e-5 + 1e-4 * r.abs();
        match rng.random_range(0..10) {
            0 => r,
            1 => r + tie,
            2 => r - tie,
            3 => r + 2.0 * tie,
            4 => f64::NAN,
            5 => f64::INFINITY.copysign(r),
            6 => -r,
            7 => 0.0,
            8 => r * (1.0 + 1e-7),
            _ => r + rng.random_range(-1e-3..1e-3),
        }
    }

    fn case(rng: &mut ChaCha8Rng, n: usize, specials: bool) -> (Vec<f64>, Vec<f64>) {
        let adv = adversarial();
        let want: Vec<f64> = (0..n)
            .map(|_| {
                if specials && rng.random_range(0..4) == 0 {
                    adv[rng.random_range(0..adv.len())]
                } else {
                    rng.random_range(-10.0..10.0)
                }
            })
            .collect();
        let got = want
            .iter()
            .map(|&r| {
                if specials && rng.random_range(0..3) == 0 {
                    near(rng, r)
                } else {
                    r + rng.random_range(-1e-6..1e-6)
                }
            })
            .collect();
        (got, want)
    }

    const TOL: fn(usize, f64) -> f64 = |_, r| 1e-5 + 1e-4 * r.abs();

    #[test]
    fn fused_pass_is_the_scalar_walk_for_every_float_dtype() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
            // Lengths off the block size, clean and dirty blocks mixed.
            for (n, specials) in [
                (0, false),
                (1, true),
                (63, false),
                (200, true),
                (1000, false),
                (777, true),
            ] {
                let (g, w) = case(&mut rng, n, specials);
                let got = Tensor::from_f64(dtype, &[n], &g);
                let want = Tensor::from_f64(DType::F64, &[n], &w);
                agree(&got, &want, TOL);
                // A per-element allowance (the bound paths), with zeros.
                agree(
                    &got,
                    &want,
                    |i, r| if i % 7 == 0 { 0.0 } else { 1e-3 * r.abs() },
                );
                // A lane compared with a lane of its own dtype.
                agree(&got, &got.cast(dtype), TOL);
            }
        }
    }

    #[test]
    fn fused_pass_is_the_scalar_walk_on_adversarial_pairs() {
        // Every adversarial value against every other, in every float dtype.
        let adv = adversarial();
        let (g, w): (Vec<f64>, Vec<f64>) = adv
            .iter()
            .flat_map(|&a| adv.iter().map(move |&r| (a, r)))
            .unzip();
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
            let got = Tensor::from_f64(dtype, &[g.len()], &g);
            let want = Tensor::from_f64(DType::F64, &[w.len()], &w);
            agree(&got, &want, TOL);
        }
    }

    #[test]
    fn fused_pass_is_the_scalar_walk_for_integers_and_bools() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let n = 500;
        let w: Vec<f64> = (0..n)
            .map(|_| rng.random_range(-300i64..300) as f64)
            .collect();
        let g: Vec<f64> = w
            .iter()
            .map(|&x| {
                if rng.random_range(0..9) == 0 {
                    x + 1.0
                } else {
                    x
                }
            })
            .collect();
        for dtype in [
            DType::I64,
            DType::I32,
            DType::I8,
            DType::U8,
            DType::U64,
            DType::Bool,
        ] {
            let got = Tensor::from_f64(dtype, &[n], &g);
            let want = Tensor::from_f64(dtype, &[n], &w);
            agree(&got, &want, |_, _| 0.0);
            agree(&got, &want, TOL);
        }
        // Past 2^53 the f64 walk rounds; the fused pass rounds the same way.
        let big = [i64::MAX as f64, i64::MIN as f64, 2f64.powi(53) + 2.0, -3.0];
        let got = Tensor::from_f64(DType::I64, &[4], &big);
        let want = Tensor::from_f64(DType::I64, &[4], &[0.0, 0.0, 2f64.powi(53), -3.0]);
        agree(&got, &want, |_, _| 0.0);
    }

    #[test]
    fn a_strided_lane_compares_as_its_logical_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (g, w) = case(&mut rng, 6 * 70, true);
        let Tensor::F32(a) = Tensor::from_f64(DType::F32, &[6, 70], &g) else {
            unreachable!()
        };
        let got = Tensor::F32(
            a.reversed_axes()
                .as_standard_layout()
                .to_owned()
                .reversed_axes(),
        );
        assert!(matches!(&got, Tensor::F32(a) if a.as_slice().is_none()));
        let want = Tensor::from_f64(DType::F64, &[6, 70], &w);
        agree(&got, &want, TOL);
    }
}
