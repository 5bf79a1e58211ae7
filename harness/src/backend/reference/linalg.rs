//! Reference ops: matrix products (Gemm, MatMul).
//!
//! These dominate the run time of real models, so the float path hands each
//! 2-D product to ndarray's `dot` on f64 views (a blocked GEMM) while the
//! surrounding semantics — transposes, alpha/beta, C broadcasting, numpy's
//! 1-D promotion and batch broadcasting — are spelled out here. Integer
//! products use a plain wrapping loop in the input's fixed-width type.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Ix2, IxDyn};

use super::elementwise::{Arith, IntElem};
use super::shape::{arr, float_to, wide_ints};
use super::util::broadcast_shape;
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::tensor::{Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.op(
        "Gemm",
        gemm,
        "https://onnx.ai/onnx/operators/onnx__Gemm.html",
        SPEC,
    );
    r.op(
        "MatMul",
        matmul,
        "https://onnx.ai/onnx/operators/onnx__MatMul.html",
        SPEC,
    );
}

/// a·b on fixed-width integers, wrapping, written into `out`.
fn int_mm<T: IntElem>(a: ArrayView2<T>, b: ArrayView2<T>, mut out: ArrayViewMut2<T>) {
    let k = a.dim().1;
    for ((i, j), o) in out.indexed_iter_mut() {
        *o = (0..k).fold(T::narrow(0), |acc, p| {
            acc.arith(
                Arith::Add,
                a[[i, p]].arith(Arith::Mul, b[[p, j]]).expect("no division"),
            )
            .expect("no division")
        });
    }
}

/// `c = a·b` on f64 through matrixmultiply's blocked, FMA-vectorised `dgemm`
/// (the kernel ndarray's `dot` uses, called on the views' own strides so no
/// operand is copied and the product lands in place). `c` need not be
/// initialised: beta is 0.
pub(super) fn dgemm_into(a: ArrayView2<f64>, b: ArrayView2<f64>, mut c: ArrayViewMut2<f64>) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "dgemm_into: shapes");
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: the pointers and strides come from live views of exactly the
    // dimensions passed, and `c` is borrowed mutably (no aliasing).
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa[0],
            sa[1],
            b.as_ptr(),
            sb[0],
            sb[1],
            0.0,
            c.as_mut_ptr(),
            sc[0],
            sc[1],
        );
    }
}

/// numpy matmul: 1-D operands promoted (and the added dim removed), batch
/// dims broadcast; `mm` writes each 2-D product into its slot of the output.
fn matmul_nd<T: Clone + Default>(
    ctx: &OpCtx,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    mm: impl Fn(ArrayView2<T>, ArrayView2<T>, ArrayViewMut2<T>),
) -> OpResult<ArrayD<T>> {
    let (ra, rb) = (a.ndim(), b.ndim());
    if ra == 0 || rb == 0 {
        return Err(ctx.fail("MatMul inputs `A` and `B` must have rank >= 1"));
    }
    let ash: Vec<usize> = if ra == 1 {
        vec![1, a.len()]
    } else {
        a.shape().to_vec()
    };
    let bsh: Vec<usize> = if rb == 1 {
        vec![b.len(), 1]
    } else {
        b.shape().to_vec()
    };
    let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (k2, n) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    if k != k2 {
        return Err(ctx.fail(format!(
            "MatMul: `A` {:?} and `B` {:?} have inner dims {k} and {k2}",
            a.shape(),
            b.shape()
        )));
    }
    let (abatch, bbatch) = (&ash[..ash.len() - 2], &bsh[..bsh.len() - 2]);
    let batch = broadcast_shape(abatch, bbatch).map_err(|_| {
        ctx.fail(format!(
            "MatMul: batch dims of `A` {:?} and `B` {:?} do not broadcast",
            a.shape(),
            b.shape()
        ))
    })?;
    let (ac, bc) = (a.as_standard_layout(), b.as_standard_layout());
    let a3 = stack3(ac.as_slice().expect("standard layout"), abatch, m, k);
    let b3 = stack3(bc.as_slice().expect("standard layout"), bbatch, k, n);
    let nb: usize = batch.iter().product();
    // flat batch index in an operand whose batch dims are right-aligned to `batch`
    let source = |dims: &[usize], mut bi: usize| {
        let (mut idx, mut stride) = (0, 1);
        for (pos, &d) in batch.iter().enumerate().rev() {
            let i = bi % d;
            bi /= d;
            let off = batch.len() - dims.len();
            if pos >= off {
                let od = dims[pos - off];
                if od != 1 {
                    idx += i * stride;
                }
                stride *= od;
            }
        }
        idx
    };
    let mut out = vec![T::default(); nb * m * n];
    if b3.dim().0 == 1 && a3.dim().0 == nb {
        // One `B` for every `A` (a layer's weights applied over batch and
        // positions): the stacked `A`s are one (nb·m)×k matrix and the
        // outputs one (nb·m)×n, so `B` is packed once instead of once per
        // matrix of `A` (swin_t: products of 2–49 rows each re-packed a
        // 384×1536 `B`). Each output element is the same sum in the same
        // order, so the values are the same bits.
        let a2 = a3
            .into_shape_with_order((nb * m, k))
            .expect("contiguous stack");
        let slot = ArrayViewMut2::from_shape((nb * m, n), &mut out[..]).expect("slot shape");
        mm(a2, b3.index_axis(Axis(0), 0), slot);
        return Ok(matmul_out(batch, (ra, m), (rb, n), out));
    }
    for (bi, slot) in out.chunks_mut((m * n).max(1)).enumerate().take(nb) {
        let slot = ArrayViewMut2::from_shape((m, n), slot).expect("slot shape");
        mm(
            a3.index_axis(Axis(0), source(abatch, bi)),
            b3.index_axis(Axis(0), source(bbatch, bi)),
            slot,
        );
    }
    Ok(matmul_out(batch, (ra, m), (rb, n), out))
}

/// The product's array: batch dims, then `m` unless `A` was 1-D, then `n`
/// unless `B` was.
fn matmul_out<T>(
    mut shape: Vec<usize>,
    (ra, m): (usize, usize),
    (rb, n): (usize, usize),
    out: Vec<T>,
) -> ArrayD<T> {
    if ra > 1 {
        shape.push(m);
    }
    if rb > 1 {
        shape.push(n);
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("count matches")
}

/// Row-major contents seen as a stack of `rows`×`cols` matrices.
fn stack3<'a, T>(a: &'a [T], batch: &[usize], rows: usize, cols: usize) -> ArrayView3<'a, T> {
    let nb = batch.iter().product();
    ArrayView3::from_shape((nb, rows, cols), a).expect("count matches")
}

/// MatMul-1/9/13: numpy `matmul` (1-D promotion, broadcast batch dims).
pub(super) fn matmul(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let out = match (&a.data, &b.data) {
        (Tensor::F64(p), Tensor::F64(q)) => Tensor::F64(matmul_nd(ctx, p, q, dgemm_into)?),
        (p, q) if p.dtype() == q.dtype() => {
            by_dtype!(ints p.dtype(), T => T::wrap(matmul_nd(ctx, arr::<T>(p), arr::<T>(q), int_mm::<T>)?),
            _ => return Err(ctx.fail(format!("MatMul of {}", a.dtype))))
        }
        _ => {
            return Err(ctx.fail(format!(
                "MatMul: inputs `A` ({}) and `B` ({}) must share a dtype",
                a.dtype, b.dtype
            )))
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// A 2-D view of a Gemm operand, transposed when asked.
fn mat<'a, T>(
    ctx: &OpCtx,
    a: &'a ArrayD<T>,
    name: &str,
    trans: bool,
) -> OpResult<ArrayView2<'a, T>> {
    let v = a.view().into_dimensionality::<Ix2>().map_err(|_| {
        ctx.fail(format!(
            "input `{name}` must be 2-D, has shape {:?}",
            a.shape()
        ))
    })?;
    Ok(if trans { v.reversed_axes() } else { v })
}

/// Gemm-7/9/11/13: Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A (same for B),
/// C optional (11+) and unidirectionally broadcast to (M, N). Integer inputs
/// multiply exactly (wrapping); alpha/beta other than 1 then go through f64
/// and back with Cast's float→int rule.
fn gemm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let c = x.get(2).copied().flatten();
    let (ta, tb) = (ctx.int("transA", 0)? != 0, ctx.int("transB", 0)? != 0);
    let (alpha, beta) = (
        ctx.float("alpha", 1.0)? as f64,
        ctx.float("beta", 1.0)? as f64,
    );
    if a.data.dtype() != b.data.dtype() || c.is_some_and(|c| c.data.dtype() != a.data.dtype()) {
        return Err(ctx.fail(format!(
            "Gemm: inputs `A` ({}), `B` ({}) and `C` must share a dtype",
            a.dtype, b.dtype
        )));
    }
    let check = |(m, k): (usize, usize), (k2, n): (usize, usize)| -> OpResult<(usize, usize)> {
        if k != k2 {
            return Err(ctx.fail(format!(
                "Gemm: A' is {m}x{k} but B' is {k2}x{n} (transA={ta}, transB={tb})"
            )));
        }
        Ok((m, n))
    };
    let c_full = |m: usize, n: usize| -> OpResult<Option<ArrayD<f64>>> {
        let Some(c) = c else { return Ok(None) };
        let cv: ArrayD<f64> = match &c.data {
            Tensor::F64(v) => v.clone(),
            t => wide_ints(t).expect("int").mapv(|v| v as f64),
        };
        let full = cv.broadcast(IxDyn(&[m, n])).ok_or_else(|| {
            ctx.fail(format!(
                "input `C` of shape {:?} does not broadcast to ({m}, {n})",
                c.shape()
            ))
        })?;
        Ok(Some(full.to_owned()))
    };
    let out = match (&a.data, &b.data) {
        (Tensor::F64(p), Tensor::F64(q)) => {
            let (am, bm) = (mat(ctx, p, "A", ta)?, mat(ctx, q, "B", tb)?);
            let (m, n) = check(am.dim(), bm.dim())?;
            let mut y = Array2::zeros((m, n));
            dgemm_into(am, bm, y.view_mut());
            let mut y = y.into_dyn();
            y.mapv_inplace(|v| alpha * v);
            if let Some(cf) = c_full(m, n)? {
                y.zip_mut_with(&cf, |y, &c| *y += beta * c);
            }
            Tensor::F64(y)
        }
        (p, q) => by_dtype!(ints p.dtype(), T => {
            let (am, bm) = (mat(ctx, arr::<T>(p), "A", ta)?, mat(ctx, arr::<T>(q), "B", tb)?);
            let (m, n) = check(am.dim(), bm.dim())?;
            let mut prod = Array2::<T>::default((m, n));
            int_mm::<T>(am, bm, prod.view_mut());
            let prod = prod.into_dyn();
            match c {
                Some(ct) if alpha == 1.0 && beta == 1.0 => {
                    c_full(m, n)?;
                    let cv = arr::<T>(&ct.data).broadcast(IxDyn(&[m, n])).expect("checked");
                    let mut y = prod;
                    y.zip_mut_with(&cv, |y, &c| *y = y.arith(Arith::Add, c).expect("no division"));
                    T::wrap(y)
                }
                None if alpha == 1.0 => T::wrap(prod),
                _ => {
                    let mut y = prod.mapv(|v| alpha * v.wide() as f64);
                    if let Some(cf) = c_full(m, n)? {
                        y.zip_mut_with(&cf, |y, &c| *y += beta * c);
                    }
                    float_to(&y, p.dtype())
                }
            }
        }, _ => return Err(ctx.fail(format!("Gemm of {}", a.dtype)))),
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn run(op: &str, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, 13, ins).unwrap().remove(0).unwrap()
    }

    #[test]
    fn gemm_transposes_and_broadcast_c() {
        // A stored as (K=2, M=3) with transA, B stored as (N=2, K=2) with transB
        let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]); // Aᵀ = [[1,4],[2,5],[3,6]]
        let b = f(&[2, 2], &[1., 0., 1., 1.]); // Bᵀ = [[1,1],[0,1]]
        let c = f(&[2], &[10., 20.]);
        let attrs = vec![
            ("transA", Attr::Int(1)),
            ("transB", Attr::Int(1)),
            ("alpha", Attr::Float(2.0)),
            ("beta", Attr::Float(0.5)),
        ];
        let y = run("Gemm", attrs, &[Some(&a), Some(&b), Some(&c)]);
        // Aᵀ·Bᵀ = [[1,5],[2,7],[3,9]]; *2 + [5,10]
        assert_eq!(y.shape(), &[3, 2]);
        assert_eq!(y.data.to_f64_vec(), vec![7., 20., 9., 24., 11., 28.]);
        let y = run(
            "Gemm",
            vec![],
            &[
                Some(&i(&[1, 2], &[2, 3])),
                Some(&i(&[2, 1], &[4, 5])),
                Some(&i(&[], &[1])),
            ],
        );
        assert_eq!(y.data, Tensor::I64(ArrayD::from_elem(IxDyn(&[1, 1]), 24)));
        let node = test_node("Gemm", 2, 1, vec![]);
        assert!(run_op(&node, 13, &[Some(&a), Some(&b)]).is_err());
    }

    #[test]
    fn matmul_1d_and_batched_broadcast() {
        let v = f(&[2], &[1., 2.]);
        let m = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run("MatMul", vec![], &[Some(&v), Some(&m)]);
        assert_eq!(
            (y.shape(), y.data.to_f64_vec()),
            (&[3usize][..], vec![9., 12., 15.])
        );
        let w = f(&[3], &[1., 0., -1.]);
        let y = run("MatMul", vec![], &[Some(&m), Some(&w)]);
        assert_eq!(
            (y.shape(), y.data.to_f64_vec()),
            (&[2usize][..], vec![-2., -2.])
        );
        assert_eq!(
            run("MatMul", vec![], &[Some(&w), Some(&w)])
                .data
                .to_f64_vec(),
            vec![2.]
        );
        // (2,1,1,2) x (3,2,1) -> (2,3,1,1)
        let a = f(&[2, 1, 1, 2], &[1., 1., 10., 0.]);
        let b = f(&[3, 2, 1], &[1., 2., 3., 4., 5., 6.]);
        let y = run("MatMul", vec![], &[Some(&a), Some(&b)]);
        assert_eq!(y.shape(), &[2, 3, 1, 1]);
        assert_eq!(y.data.to_f64_vec(), vec![3., 7., 11., 10., 30., 50.]);
        let yi = run(
            "MatMul",
            vec![],
            &[
                Some(&i(&[1, 2], &[i64::MAX, 1])),
                Some(&i(&[2, 1], &[2, 2])),
            ],
        );
        assert_eq!(yi.data.to_f64_vec(), vec![0.]); // 2*MAX wraps to -2, +2 = 0
        let node = test_node("MatMul", 2, 1, vec![]);
        assert!(run_op(&node, 13, &[Some(&m), Some(&m)]).is_err());
    }

    fn rand_t(shape: &[usize], seed: u64) -> RefTensor {
        use rand::{Rng, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = shape.iter().product();
        f(
            shape,
            &(0..n)
                .map(|_| r.random_range(-1.0..1.0))
                .collect::<Vec<_>>(),
        )
    }

    /// Float64 results of two summation orders agree to ~1e-12 relative
    /// (also used by the convolution tests).
    pub(crate) fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "element {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn matmul_gemm_path_matches_the_naive_loop_under_batch_broadcast() {
        // (batch A, batch B, m, k, n): broadcast on either side, size-1 and empty-free shapes
        type Shapes<'a> = (&'a [usize], &'a [usize], usize, usize, usize);
        let cases: [Shapes; 6] = [
            (&[2, 1, 3], &[4, 1], 5, 7, 3),
            (&[1], &[3], 1, 9, 17),
            (&[], &[2, 2], 33, 20, 9),
            (&[3], &[], 8, 1, 8),
            // One `B` for every `A`: the stacked product.
            (&[2, 3], &[1, 1, 1], 4, 13, 5),
            (&[3, 2], &[], 2, 300, 6),
        ];
        for (ci, &(ba, bb, m, k, n)) in cases.iter().enumerate() {
            let ash: Vec<usize> = ba.iter().copied().chain([m, k]).collect();
            let bsh: Vec<usize> = bb.iter().copied().chain([k, n]).collect();
            let (a, b) = (rand_t(&ash, ci as u64), rand_t(&bsh, 50 + ci as u64));
            let y = run("MatMul", vec![], &[Some(&a), Some(&b)]);
            let batch = broadcast_shape(ba, bb).unwrap();
            let (av, bv) = (a.f64().unwrap(), b.f64().unwrap());
            let mut want = Vec::new();
            let nb: usize = batch.iter().product();
            for bi in 0..nb {
                // the batch multi-index, then each operand's own (size-1 dims read 0)
                let mut idx = vec![0; batch.len()];
                let mut t = bi;
                for d in (0..batch.len()).rev() {
                    idx[d] = t % batch[d];
                    t /= batch[d];
                }
                let pick = |own: &[usize]| -> Vec<usize> {
                    let off = batch.len() - own.len();
                    own.iter()
                        .enumerate()
                        .map(|(d, &s)| if s == 1 { 0 } else { idx[off + d] })
                        .collect()
                };
                let (ia, ib) = (pick(ba), pick(bb));
                for r in 0..m {
                    for c in 0..n {
                        let mut acc = 0.0;
                        for p in 0..k {
                            let ai: Vec<usize> = ia.iter().copied().chain([r, p]).collect();
                            let bj: Vec<usize> = ib.iter().copied().chain([p, c]).collect();
                            acc += av[IxDyn(&ai)] * bv[IxDyn(&bj)];
                        }
                        want.push(acc);
                    }
                }
            }
            let mut shape = batch.clone();
            shape.extend([m, n]);
            assert_eq!(y.shape(), &shape[..], "case {ci}");
            assert_close(&y.floats().unwrap(), &want);
        }
    }

    /// A batch of `A`s times one `B`, as one stacked product, gives the same
    /// bits as one product per matrix of `A` (k past the GEMM's k-block).
    #[test]
    fn the_stacked_product_is_the_per_matrix_products_bit_for_bit() {
        let (nb, m, k, n) = (6, 7, 300, 9);
        let a = rand_t(&[2, 3, m, k], 3);
        let b = rand_t(&[k, n], 4);
        let y = run("MatMul", vec![], &[Some(&a), Some(&b)]);
        let (av, bv) = (a.f64().unwrap(), b.f64().unwrap());
        let stack = av.to_shape((nb, m, k)).unwrap();
        let b2 = bv.view().into_dimensionality::<Ix2>().unwrap();
        let mut want = Vec::new();
        for i in 0..nb {
            let mut c = Array2::<f64>::zeros((m, n));
            dgemm_into(stack.index_axis(Axis(0), i), b2, c.view_mut());
            want.extend(c.iter().copied());
        }
        assert_eq!(y.shape(), &[2, 3, m, n]);
        let got = y.floats().unwrap();
        assert!(got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits()));
    }

    #[test]
    fn gemm_path_matches_the_naive_loop_with_transposes() {
        let (m, k, n) = (13, 11, 7);
        for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let a = rand_t(&if ta == 1 { [k, m] } else { [m, k] }, 7);
            let b = rand_t(&if tb == 1 { [n, k] } else { [k, n] }, 8);
            let c = rand_t(&[n], 9);
            let attrs = vec![
                ("transA", Attr::Int(ta)),
                ("transB", Attr::Int(tb)),
                ("alpha", Attr::Float(0.5)),
                ("beta", Attr::Float(2.0)),
            ];
            let y = run("Gemm", attrs, &[Some(&a), Some(&b), Some(&c)]);
            let (av, bv, cv) = (a.f64().unwrap(), b.f64().unwrap(), c.floats().unwrap());
            let at = |r: usize, p: usize| if ta == 1 { av[[p, r]] } else { av[[r, p]] };
            let bt = |p: usize, q: usize| if tb == 1 { bv[[q, p]] } else { bv[[p, q]] };
            let want: Vec<f64> = (0..m * n)
                .map(|e| {
                    let (r, q) = (e / n, e % n);
                    0.5 * (0..k).map(|p| at(r, p) * bt(p, q)).sum::<f64>() + 2.0 * cv[q]
                })
                .collect();
            assert_eq!(y.shape(), &[m, n]);
            assert_close(&y.floats().unwrap(), &want);
        }
    }
}
