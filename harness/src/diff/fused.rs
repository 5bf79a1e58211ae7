//! The comparison's inner loop: one fused pass over two contiguous typed
//! slices (the lane's, the reference's) that tallies every metric at once.
//!
//! It exists apart from [`super::compare`] because speed and exactness pull
//! against each other here. The dtypes are matched once, outside the loop
//! (`tally::<f32, f64>` is its own monomorphised loop), and the slices are
//! walked in blocks of [`BLOCK`] elements, each split across [`LANES`]
//! independent accumulators so the compiler turns the pass into vector code
//! (and, on an x86-64 CPU with AVX2, a copy of it compiled for AVX2, chosen
//! at run time; same operations, same order, same bits). The block pass
//! computes the maxima without a division: an element's relative error or
//! bound ratio is divided out only in a block where some element could beat
//! the running maximum (a conservative product test), which after the first
//! blocks is rare. It also flags whether any element is special (NaN, ±Inf)
//! or out of tolerance; such a block, and the short last block, is walked by
//! the exact scalar rule ([`Tally::push`]), which counts and locates the
//! mismatches. Every metric is bit for bit what an element-by-element walk
//! gives, except that the cosine's three sums are kept as [`LANES`] partial
//! sums (element `i` into partial `i % LANES`, combined pairwise at the
//! end): a fixed order, so the cosine is deterministic, but its last bits
//! differ from one in-order sum. The tests pin all of it against a plain
//! scalar oracle. The error allowed per element is an [`Allowance`]: the
//! block pass asks it once per block for a rule indexed within the block,
//! so that a bound read from a per-element array (an accumulating op's
//! magnitudes, [`PerElement`]) costs no bounds check per element, which
//! kept the pass from vectorising.

use half::{bf16, f16};

use super::ulp;
use crate::tensor::Element;

/// Elements per block: small enough that a dirty block's second walk stays
/// in L1, large enough that the per-block bookkeeping is noise.
const BLOCK: usize = 64;

/// Independent accumulators per block (maxima, flags and cosine partial
/// sums): element `i` goes to accumulator `i % LANES`. Four float64s are one
/// AVX2 register; more would spill the block pass's registers.
pub(super) const LANES: usize = 4;

/// The error allowed at each element: `at(i, r)` for flat index `i` where
/// the reference is `r`. Any `Fn(usize, f64) -> f64` is one. A rule that
/// reads a per-element array (an accumulating bound's magnitudes) gives,
/// per block, a rule indexed within the block ([`Allowance::block`]), so
/// that its array is sliced once per block, not bounds-checked per element:
/// with the check inside, the block pass did not vectorise (110 M elements
/// per second against 460).
pub trait Allowance {
    /// The error allowed at flat index `i` where the reference is `r`.
    fn at(&self, i: usize, r: f64) -> f64;

    /// The rule for the [`BLOCK`] elements from flat index `base` (all in
    /// range), indexed `0..BLOCK`.
    #[inline(always)]
    fn block(&self, base: usize) -> impl Fn(usize, f64) -> f64 + '_ {
        move |k, r| self.at(base + k, r)
    }
}

impl<F: Fn(usize, f64) -> f64> Allowance for F {
    #[inline(always)]
    fn at(&self, i: usize, r: f64) -> f64 {
        self(i, r)
    }
}

/// An allowance that reads one float32 per element: `rule(m[i], r)`, and
/// `rule(past, r)` past the end of `m`.
pub struct PerElement<'a, G> {
    pub m: &'a [f32],
    pub past: f32,
    pub rule: G,
}

impl<G: Fn(f64, f64) -> f64> Allowance for PerElement<'_, G> {
    #[inline(always)]
    fn at(&self, i: usize, r: f64) -> f64 {
        let m = self.m.get(i).copied().unwrap_or(self.past);
        (self.rule)(f64::from(m), r)
    }

    /// The block's values copied out (256 bytes), so that the rule reads
    /// them without a branch.
    #[inline(always)]
    fn block(&self, base: usize) -> impl Fn(usize, f64) -> f64 + '_ {
        let mut m = [self.past; BLOCK];
        let rest = self.m.get(base..).unwrap_or_default();
        let n = rest.len().min(BLOCK);
        m[..n].copy_from_slice(&rest[..n]);
        move |k, r| (self.rule)(f64::from(m[k % BLOCK]), r)
    }
}

/// A product test never misses a quotient above the running maximum: the
/// maximum is shrunk by this factor (more than two roundings) first.
const SHRINK: f64 = 1.0 - 1.0 / (1u64 << 40) as f64;

/// Below this a product may have lost relative precision (subnormal), so
/// the product test treats it as "could beat the maximum".
const TINY: f64 = 1e-290;

/// A lane element: converts to f64 and knows its ULP distance to a
/// (clamped, finite) float64 reference value.
pub(super) trait Lane: Element {
    /// What the ULP maximum is accumulated in: f64 for float32 (its
    /// distances are below 2^33, exact in f64, and f64 maxima vectorise
    /// where 64-bit integer compares do not), u64 otherwise.
    type Ulp: Copy + PartialOrd + Default;

    /// ULP distance between `self` (whose f64 value is `a`) and `r` rounded
    /// to this dtype; the same number as [`ulp::ulp`] for this dtype.
    fn ulp(self, a: f64, r: f64) -> Self::Ulp;

    /// The distance as the report's integer.
    fn ulp_u64(u: Self::Ulp) -> u64;
}

impl Lane for f32 {
    type Ulp = f64;

    #[inline(always)]
    fn ulp(self, _: f64, r: f64) -> f64 {
        ulp::ulp_f32_wide(self, r as f32)
    }

    #[inline(always)]
    fn ulp_u64(u: f64) -> u64 {
        u as u64
    }
}

macro_rules! u64_ulp {
    ($($t:ty => $f:expr),* $(,)?) => {$(
        impl Lane for $t {
            type Ulp = u64;

            #[inline(always)]
            fn ulp(self, a: f64, r: f64) -> u64 {
                let f: fn(f64, f64) -> u64 = $f;
                f(a, r)
            }

            #[inline(always)]
            fn ulp_u64(u: u64) -> u64 {
                u
            }
        }
    )*};
}
u64_ulp!(
    f64 => ulp::ulp_f64,
    f16 => |a, r| ulp::ulp_half(a, r, |v| f16::from_f64(v).to_bits()),
    bf16 => |a, r| ulp::ulp_half(a, r, |v| bf16::from_f64(v).to_bits()),
    i8 => ulp::ulp_int,
    i16 => ulp::ulp_int,
    i32 => ulp::ulp_int,
    i64 => ulp::ulp_int,
    u8 => ulp::ulp_int,
    u16 => ulp::ulp_int,
    u32 => ulp::ulp_int,
    u64 => ulp::ulp_int,
    bool => ulp::ulp_int,
);

/// The cosine's three sums, as [`LANES`] partial sums each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sums {
    pub dot: [f64; LANES],
    pub na: [f64; LANES],
    pub nb: [f64; LANES],
}

impl Sums {
    /// Adds element `i`'s products (lane value `a`, reference `r`).
    #[inline(always)]
    fn add(&mut self, i: usize, a: f64, r: f64) {
        let l = i % LANES;
        self.dot[l] += a * r;
        self.na[l] += a * a;
        self.nb[l] += r * r;
    }

    /// The three sums: partials combined pairwise, always in this order.
    pub fn total(&self) -> (f64, f64, f64) {
        (combine(&self.dot), combine(&self.na), combine(&self.nb))
    }
}

fn combine(s: &[f64; LANES]) -> f64 {
    (s[0] + s[1]) + (s[2] + s[3])
}

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
    pub sums: Sums,
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

/// The larger of two non-NaN values (a plain compare, which vectorises).
#[inline(always)]
fn larger<T: PartialOrd>(x: T, y: T) -> T {
    if x > y {
        x
    } else {
        y
    }
}

/// Relative error of an error `d` against the reference `r`.
#[inline(always)]
fn rel(d: f64, r: f64) -> f64 {
    if r != 0.0 {
        d / r.abs()
    } else if d > 0.0 {
        f64::INFINITY
    } else {
        0.0
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
            sums: Sums {
                dot: [0.0; LANES],
                na: [0.0; LANES],
                nb: [0.0; LANES],
            },
        }
    }

    /// The exact rule for one element `i`: lane value `x` (f64 `a`),
    /// clamped reference `r`, allowed error `allowed(i, r)`.
    #[inline]
    fn push<A: Lane>(&mut self, i: usize, x: A, r: f64, allowed: &impl Allowance) {
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
            self.max_rel = self.max_rel.max(rel(d, r));
            let allowed = allowed.at(i, r);
            if d > 0.0 {
                self.worst_ratio = self.worst_ratio.max(d / allowed);
            }
            if d > allowed {
                excess = Some(d - allowed);
            }
            self.max_ulp = self.max_ulp.max(A::ulp_u64(x.ulp(a, r)));
            self.sums.add(i, a, r);
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

    /// Walks one whole block: the vector pass, or the exact rule where the
    /// block is dirty.
    #[inline(always)]
    fn block<A: Lane, B: Element>(
        &mut self,
        a: &[A; BLOCK],
        b: &[B; BLOCK],
        base: usize,
        range: Range,
        allowed: &impl Allowance,
    ) {
        if !self.clean_block(a, b, base, range, allowed) {
            for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
                self.push(base + k, x, range.clamp(y.to_f64()), allowed);
            }
        }
    }

    /// The branch-free pass over one block starting at flat index `base`.
    /// False (and nothing folded in) when some element is special or out
    /// of tolerance; else the block's metrics are folded in and true.
    #[inline(always)]
    fn clean_block<A: Lane, B: Element>(
        &mut self,
        a: &[A; BLOCK],
        b: &[B; BLOCK],
        base: usize,
        range: Range,
        allowed: &impl Allowance,
    ) -> bool {
        let (rel_floor, ratio_floor) = (floor(self.max_rel), floor(self.worst_ratio));
        let allowed = allowed.block(base);
        let mut sums = self.sums;
        let mut abs = [0f64; LANES];
        let mut ulps = [A::Ulp::default(); LANES];
        // Per accumulator: DIRTY, and CANDIDATE (some element may beat
        // max_rel or worst_ratio), as bits (no packing of vector masks).
        let mut flags = [0u64; LANES];
        for c in 0..BLOCK / LANES {
            for j in 0..LANES {
                let k = c * LANES + j;
                let x = a[k];
                let (av, r, d, lim) = element(x, b[k], k, range, &allowed);
                // False for a NaN `d` or `lim` (NaN in either side makes `d` NaN).
                let within = d <= lim;
                let dirty = !within | !av.is_finite() | !r.is_finite();
                abs[j] = larger(d, abs[j]);
                ulps[j] = larger(x.ulp(av, r), ulps[j]);
                // d / |r| > max_rel needs d > max_rel * |r|; likewise the ratio.
                let (pr, pl) = (rel_floor * r.abs(), ratio_floor * lim);
                let cand = (d > pr) | (d > pl) | (((pr < TINY) | (pl < TINY)) & (d > 0.0));
                flags[j] |= u64::from(dirty) | u64::from(cand) << 1;
                sums.dot[j] += av * r;
                sums.na[j] += av * av;
                sums.nb[j] += r * r;
            }
        }
        let flags = flags.into_iter().fold(0, |x, y| x | y);
        if flags & DIRTY != 0 {
            return false;
        }
        self.sums = sums;
        self.max_abs = self.max_abs.max(abs.into_iter().fold(0.0, larger));
        let ulp = ulps.into_iter().fold(A::Ulp::default(), larger);
        self.max_ulp = self.max_ulp.max(A::ulp_u64(ulp));
        if flags & CANDIDATE != 0 {
            // Rare: the exact quotients, the elements recomputed as above.
            let (mut m_rel, mut m_ratio) = (0f64, 0f64);
            for k in 0..BLOCK {
                let (_, r, d, lim) = element(a[k], b[k], k, range, &allowed);
                m_rel = larger(rel(d, r), m_rel);
                m_ratio = larger(if d > 0.0 { d / lim } else { 0.0 }, m_ratio);
            }
            self.max_rel = self.max_rel.max(m_rel);
            self.worst_ratio = self.worst_ratio.max(m_ratio);
        }
        true
    }
}

/// A running maximum shrunk for the product test; 0 (every nonzero error a
/// candidate) where it is too small to shrink by rounding (subnormal).
#[inline(always)]
fn floor(max: f64) -> f64 {
    if max < TINY {
        0.0
    } else {
        max * SHRINK
    }
}

const DIRTY: u64 = 1;
const CANDIDATE: u64 = 2;

/// One element's lane value, clamped reference, error and allowance
/// (`allowed` of index `i` within its block, see [`Allowance::block`]).
#[inline(always)]
fn element<A: Lane, B: Element>(
    x: A,
    y: B,
    i: usize,
    range: Range,
    allowed: &impl Fn(usize, f64) -> f64,
) -> (f64, f64, f64, f64) {
    let av = x.to_f64();
    let r = range.clamp(y.to_f64());
    let d = (av - r).abs();
    (av, r, d, allowed(i, r))
}

/// Compares `a` (the lane) with `b` (the reference) element by element,
/// element `i` allowed an error of `allowed(i, r)`.
pub(super) fn tally<A: Lane, B: Element>(
    a: &[A],
    b: &[B],
    range: Range,
    allowed: &impl Allowance,
) -> Tally {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { tally_avx2(a, b, range, allowed) };
    }
    tally_baseline(a, b, range, allowed)
}

/// The pass compiled for the build's baseline target.
pub(super) fn tally_baseline<A: Lane, B: Element>(
    a: &[A],
    b: &[B],
    range: Range,
    allowed: &impl Allowance,
) -> Tally {
    walk(a, b, range, allowed)
}

/// The same pass compiled for AVX2 (same operations in the same order: no
/// FMA contraction, so the same bits as [`tally_baseline`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn tally_avx2<A: Lane, B: Element>(
    a: &[A],
    b: &[B],
    range: Range,
    allowed: &impl Allowance,
) -> Tally {
    walk(a, b, range, allowed)
}

#[inline(always)]
fn walk<A: Lane, B: Element>(a: &[A], b: &[B], range: Range, allowed: &impl Allowance) -> Tally {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut t = Tally::new();
    let (ca, cb) = (a.chunks_exact(BLOCK), b.chunks_exact(BLOCK));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (c, (xa, xb)) in ca.zip(cb).enumerate() {
        let (xa, xb) = (
            xa.try_into().expect("a block"),
            xb.try_into().expect("a block"),
        );
        t.block(xa, xb, c * BLOCK, range, allowed);
    }
    let base = n - ra.len();
    for (k, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        t.push(base + k, x, range.clamp(y.to_f64()), allowed);
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
        // The cosine's sums: element i into partial i % 4, combined pairwise.
        let (mut dot, mut na, mut nb) = ([0f64; 4], [0f64; 4], [0f64; 4]);
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
                dot[i % 4] += a * r;
                na[i % 4] += a * a;
                nb[i % 4] += r * r;
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
            cosine: {
                let pairwise = |s: [f64; 4]| (s[0] + s[1]) + (s[2] + s[3]);
                super::super::cosine(pairwise(dot), pairwise(na), pairwise(nb))
            },
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

    /// The AVX2 copy of the pass against the baseline one, tally for tally
    /// (by their printed form: every float's shortest round trip).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_pass_is_the_baseline_pass() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: nothing to compare");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let range = |dtype| super::Range {
            overflow: overflow(dtype),
            underflow: underflow(dtype),
        };
        let zeros = |i: usize, r: f64| if i % 7 == 0 { 0.0 } else { 1e-3 * r.abs() };
        for (n, specials) in [
            (0, false),
            (64, false),
            (4096, false),
            (5000, true),
            (777, true),
        ] {
            let (g, w) = case(&mut rng, n, specials);
            let a: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            let r = range(DType::F32);
            let both = |allowed: &dyn Fn(usize, f64) -> f64| {
                let base = super::tally_baseline(&a, &w, r, &allowed);
                // SAFETY: the CPU has AVX2, checked above.
                let avx = unsafe { super::tally_avx2(&a, &w, r, &allowed) };
                assert_eq!(format!("{avx:?}"), format!("{base:?}"));
            };
            both(&TOL);
            both(&zeros);
            let h: Vec<half::f16> = g.iter().map(|&x| half::f16::from_f64(x)).collect();
            let r = range(DType::F16);
            let base = super::tally_baseline(&h, &w, r, &TOL);
            // SAFETY: the CPU has AVX2, checked above.
            let avx = unsafe { super::tally_avx2(&h, &w, r, &TOL) };
            assert_eq!(format!("{avx:?}"), format!("{base:?}"));
        }
    }

    #[test]
    fn maxima_that_creep_up_are_found_by_the_product_test() {
        // References shrinking element by element under a near-constant
        // error: the relative error and the bound ratio beat their running
        // maxima by a hair in every block, at every scale down to subnormal.
        for scale in [1.0, 1e-3, 1e-290, 1e-300, 1e-310] {
            let n = 1000;
            let w: Vec<f64> = (0..n).map(|i| (n - i) as f64 * scale).collect();
            let g: Vec<f64> = w.iter().map(|&r| r + scale * 1e-3).collect();
            for dtype in [DType::F64, DType::F32] {
                let got = Tensor::from_f64(dtype, &[n], &g);
                let want = Tensor::from_f64(DType::F64, &[n], &w);
                agree(&got, &want, |_, r| 1e-2 * r.abs());
                agree(&got, &want, TOL);
            }
        }
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
