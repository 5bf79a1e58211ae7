//! Reference ops: the convolution family (Conv, ConvTranspose).
//!
//! Convolutions are where frameworks depart most often on geometry (per-edge
//! pads, SAME_* splits, output_shape) and where a CNN spends its time. The
//! geometry (explicit per-axis `(begin pad, end pad, output length)`) is
//! decoded once for every backend in `op::window`; this file computes from it
//! through im2col / col2im and ndarray's matrix product on f64 so a 224×224
//! network runs in seconds.

use ndarray::{s, Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn, ShapeBuilder};

use super::linalg::dgemm_into;

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::window::{group, TransposeAttrs, WindowAttrs};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes (1-D/2-D/3-D, groups, dilations, auto_pad)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.op(
        "Conv",
        conv,
        "https://onnx.ai/onnx/operators/onnx__Conv.html",
        SPEC,
    );
    // ConvTranspose-1 and -11 split an odd `total_padding` (output_shape or
    // SAME_*) on opposite sides; see `op::window::transpose_split`.
    for (since, until) in [(1, 10), (11, u32::MAX)] {
        r.range(
            "ConvTranspose",
            since,
            until,
            conv_transpose,
            "https://onnx.ai/onnx/operators/onnx__ConvTranspose.html",
            SPEC,
        );
    }
}

/// Row-major strides of a shape.
fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// Multi-index of a flat row-major position.
fn unravel(mut flat: usize, shape: &[usize], out: &mut [usize]) {
    for i in (0..shape.len()).rev() {
        out[i] = flat % shape[i];
        flat /= shape[i];
    }
}

/// For every kernel offset and every "window" position in `wins` (a range of
/// flat positions over `win_shape`), the flat offset into a plane of shape
/// `plane` touched by that tap, or -1 when it falls in the padding.
/// The position is `win * stride - begin + k * dilation` per axis, which is
/// Conv's gather (window = output pixel) and ConvTranspose's scatter
/// (window = input pixel, plane = output with begin pads cropped).
fn tap_offsets(
    wins: std::ops::Range<usize>,
    win_shape: &[usize],
    plane: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dil: &[usize],
    begin: &[i64],
) -> Vec<isize> {
    let nd = plane.len();
    let pst = strides_of(plane);
    let kcount: usize = kernel.iter().product();
    let len = wins.len();
    let mut offs = vec![-1isize; kcount * len];
    let mut o = vec![0; nd];
    let mut k = vec![0; nd];
    for (j, w) in wins.enumerate() {
        unravel(w, win_shape, &mut o);
        for kidx in 0..kcount {
            unravel(kidx, kernel, &mut k);
            let mut off = 0isize;
            let mut ok = true;
            for i in 0..nd {
                let p = (o[i] * strides[i]) as i64 - begin[i] + (k[i] * dil[i]) as i64;
                if p < 0 || p >= plane[i] as i64 {
                    ok = false;
                    break;
                }
                off += p as isize * pst[i] as isize;
            }
            if ok {
                offs[kidx * len + j] = off;
            }
        }
    }
    offs
}

/// Columns per im2col block, so the block stays around 32 MB.
fn block_len(rows: usize, total: usize) -> usize {
    (4_000_000 / rows.max(1)).clamp(1, total.max(1))
}

/// What the im2col / col2im loops need of the decoded window.
struct ConvArgs {
    strides: Vec<usize>,
    dil: Vec<usize>,
    group: usize,
}

impl ConvArgs {
    fn new(ctx: &OpCtx, strides: &[usize], dil: &[usize]) -> OpResult<ConvArgs> {
        Ok(ConvArgs {
            strides: strides.to_vec(),
            dil: dil.to_vec(),
            group: group(ctx)?,
        })
    }
}

/// The optional bias B as a vector of length `m`.
fn bias(ctx: &OpCtx, x: &[Option<&RefTensor>], m: usize) -> OpResult<Option<Vec<f64>>> {
    match x.get(2).copied().flatten() {
        None => Ok(None),
        Some(b) => {
            let v = b.floats()?;
            if v.len() != m || b.shape().len() != 1 {
                return Err(ctx.fail(format!("input B has shape {:?}, expected [{m}]", b.shape())));
            }
            Ok(Some(v))
        }
    }
}

/// Conv-1/11/22 (<https://onnx.ai/onnx/operators/onnx__Conv.html>).
/// Opset 11 made strides/dilations default to 1 and defined SAME_* as
/// output = ceil(in / stride) (what opset 1 implementations already did);
/// 22 added bfloat16. Y[n, m] = B[m] + Σ_c Σ_k W[m, c, k] · Xpad[n, g·C/g + c, o·s + k·d].
pub(super) fn conv(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (xt, wt) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let (xa, wa) = (xt.f64()?, wt.f64()?);
    let (xs, ws) = (xa.shape(), wa.shape());
    if xs.len() < 3 || ws.len() != xs.len() {
        return Err(ctx.fail(format!("input X has shape {xs:?} and W {ws:?}: expected [N, C, D1, ...] and [M, C/group, k1, ...] of equal rank")));
    }
    let w = WindowAttrs::decode(ctx, &xs[2..], Some(&ws[2..]))?;
    let a = ConvArgs::new(ctx, &w.strides, &w.dilations)?;
    let (c, m, cg) = (xs[1], ws[0], ws[1]);
    if c != cg * a.group || m % a.group != 0 {
        return Err(ctx.fail(format!("input X has {c} channels and W shape {ws:?}: with `group` = {}, need C = W[1]·group and M divisible by group", a.group)));
    }
    let b = bias(ctx, x, m)?;
    let y = conv_forward(xa, wa, &w.out, &w.begins(), &a, b.as_deref());
    Ok(Lowered::one(RefTensor::float(y, xt.dtype), How::Spec))
}

/// Conv's output: bias first, then each group's product accumulated.
/// A pointwise conv (1×…×1 kernel, stride 1, no pads) multiplies X's planes
/// as they are; a depthwise one (one input and one output channel per
/// group) sums its taps directly; everything else goes through im2col and
/// `dgemm`, block by block over output positions.
fn conv_forward(
    xa: &ArrayD<f64>,
    wa: &ArrayD<f64>,
    out_sp: &[usize],
    begin: &[i64],
    a: &ConvArgs,
    b: Option<&[f64]>,
) -> ArrayD<f64> {
    let (xs, ws) = (xa.shape(), wa.shape());
    let (n, m) = (xs[0], ws[0]);
    let osize: usize = out_sp.iter().product();
    let xc = xa.as_standard_layout();
    let wc = wa.as_standard_layout();
    let g = ConvGeom {
        xv: xc.as_slice().expect("standard layout"),
        wv: wc.as_slice().expect("standard layout"),
        xs,
        ws,
        out_sp,
        begin,
        a,
    };
    let mut y = vec![0.0; n * m * osize];
    if g.pointwise() {
        conv_pointwise(&g, &mut y);
    } else if a.group == xs[1] && a.group == m {
        conv_depthwise(&g, &mut y);
    } else {
        conv_im2col(&g, &mut y);
    }
    if let Some(b) = b {
        for (plane, chunk) in y.chunks_mut(osize.max(1)).enumerate() {
            let add = b[plane % m];
            chunk.iter_mut().for_each(|v| *v += add);
        }
    }
    let mut shape = vec![n, m];
    shape.extend_from_slice(out_sp);
    ArrayD::from_shape_vec(IxDyn(&shape), y).expect("conv output shape")
}

/// A Conv's operands (standard layout) and geometry.
struct ConvGeom<'a> {
    xv: &'a [f64],
    wv: &'a [f64],
    xs: &'a [usize],
    ws: &'a [usize],
    out_sp: &'a [usize],
    begin: &'a [i64],
    a: &'a ConvArgs,
}

impl ConvGeom<'_> {
    /// 1×…×1 kernel, unit strides, no padding: the output grid is X's.
    fn pointwise(&self) -> bool {
        self.ws[2..].iter().all(|&k| k == 1)
            && self.a.strides.iter().all(|&s| s == 1)
            && self.begin.iter().all(|&p| p == 0)
            && self.out_sp == &self.xs[2..]
    }

    /// The output slab of batch `ni`, channels `ch0..ch0+rows`, positions
    /// `start..start+len`, as a matrix view into `y`.
    fn out_block<'y>(
        &self,
        y: &'y mut [f64],
        (ni, ch0, rows): (usize, usize, usize),
        (start, len): (usize, usize),
    ) -> ArrayViewMut2<'y, f64> {
        let (m, osize) = (self.ws[0], self.out_sp.iter().product::<usize>());
        let base = (ni * m + ch0) * osize + start;
        let span = if rows == 0 {
            0
        } else {
            (rows - 1) * osize + len
        };
        ArrayViewMut2::from_shape((rows, len).strides((osize, 1)), &mut y[base..base + span])
            .expect("output block")
    }

    /// Group `gi`'s weights as an (M/group)×(C/group·k) matrix.
    fn weights(&self, gi: usize) -> ArrayView2<'_, f64> {
        let (mg, rows) = (self.ws[0] / self.a.group, self.wv.len() / self.ws[0].max(1));
        ArrayView2::from_shape((mg, rows), &self.wv[gi * mg * rows..][..mg * rows])
            .expect("W block")
    }
}

/// Pointwise Conv: per batch and group, W (M/g × C/g) times X's planes.
fn conv_pointwise(g: &ConvGeom, y: &mut [f64]) {
    let (n, c, m) = (g.xs[0], g.xs[1], g.ws[0]);
    let (grp, osize) = (g.a.group, g.out_sp.iter().product::<usize>());
    let (cg, mg) = (c / grp, m / grp);
    for ni in 0..n {
        for gi in 0..grp {
            let xo = (ni * c + gi * cg) * osize;
            let xg = ArrayView2::from_shape((cg, osize), &g.xv[xo..xo + cg * osize]).expect("X");
            dgemm_into(
                g.weights(gi),
                xg,
                g.out_block(y, (ni, gi * mg, mg), (0, osize)),
            );
        }
    }
}

/// Depthwise Conv: every output channel sums its own kernel's taps over its
/// own input plane, tap by tap (no im2col, no matrix product).
fn conv_depthwise(g: &ConvGeom, y: &mut [f64]) {
    let (n, c) = (g.xs[0], g.xs[1]);
    let kernel = &g.ws[2..];
    let kc: usize = kernel.iter().product();
    let plane = &g.xs[2..];
    let (psize, osize) = (plane.iter().product::<usize>(), g.out_sp.iter().product());
    let offs = tap_offsets(
        0..osize,
        g.out_sp,
        plane,
        kernel,
        &g.a.strides,
        &g.a.dil,
        g.begin,
    );
    for (pi, dst) in y.chunks_mut(osize.max(1)).enumerate().take(n * c) {
        let xp = &g.xv[pi * psize..][..psize];
        let w = &g.wv[(pi % c) * kc..][..kc];
        for (kidx, &wk) in w.iter().enumerate() {
            for (d, &off) in dst.iter_mut().zip(&offs[kidx * osize..][..osize]) {
                if off >= 0 {
                    *d += wk * xp[off as usize];
                }
            }
        }
    }
}

/// General Conv: im2col + `dgemm`, block by block over output positions.
fn conv_im2col(g: &ConvGeom, y: &mut [f64]) {
    let (n, c, m) = (g.xs[0], g.xs[1], g.ws[0]);
    let grp = g.a.group;
    let (cg, mg) = (c / grp, m / grp);
    let kernel = &g.ws[2..];
    let kc: usize = kernel.iter().product();
    let plane = &g.xs[2..];
    let psize: usize = plane.iter().product();
    let osize: usize = g.out_sp.iter().product();
    let rows = cg * kc;
    let blk = block_len(rows, osize);
    let mut start = 0;
    while start < osize {
        let end = (start + blk).min(osize);
        let len = end - start;
        let offs = tap_offsets(
            start..end,
            g.out_sp,
            plane,
            kernel,
            &g.a.strides,
            &g.a.dil,
            g.begin,
        );
        let mut cols = Array2::<f64>::zeros((rows, len));
        for ni in 0..n {
            for gi in 0..grp {
                for ci in 0..cg {
                    let xp = &g.xv[((ni * c) + gi * cg + ci) * psize..][..psize];
                    for kidx in 0..kc {
                        let mut row = cols.row_mut(ci * kc + kidx);
                        let o = &offs[kidx * len..][..len];
                        for (dst, &off) in row.iter_mut().zip(o) {
                            *dst = if off >= 0 { xp[off as usize] } else { 0.0 };
                        }
                    }
                }
                let out = g.out_block(y, (ni, gi * mg, mg), (start, len));
                dgemm_into(g.weights(gi), cols.view(), out);
            }
        }
        start = end;
    }
}

/// ConvTranspose-1/11/22 (<https://onnx.ai/onnx/operators/onnx__ConvTranspose.html>).
/// Opset 11 swapped which side receives the odd pixel of a derived padding
/// (see `op::window::transpose_split`); 22 added bfloat16. Every input pixel scatters
/// W[c, m, k] · X[n, c, i] to output position i·s − pad_begin + k·d.
fn conv_transpose(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (xt, wt) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let (xa, wa) = (xt.f64()?, wt.f64()?);
    let (xs, ws) = (xa.shape(), wa.shape());
    if xs.len() < 3 || ws.len() != xs.len() {
        return Err(ctx.fail(format!("input X has shape {xs:?} and W {ws:?}: expected [N, C, D1, ...] and [C, M/group, k1, ...] of equal rank")));
    }
    let t = TransposeAttrs::decode(ctx, &xs[2..], &ws[2..])?;
    let a = ConvArgs::new(ctx, &t.strides, &t.dilations)?;
    if xs[1] != ws[0] || xs[1] % a.group != 0 {
        return Err(ctx.fail(format!(
            "input X has {} channels and W shape {ws:?}: need C = W[0], divisible by `group` = {}",
            xs[1], a.group
        )));
    }
    let m = ws[1] * a.group;
    let b = bias(ctx, x, m)?;
    let y = transpose_forward(xa, wa, &t, &a, b.as_deref());
    Ok(Lowered::one(RefTensor::float(y, xt.dtype), How::Spec))
}

/// Matrix product Wᵀ·X per group, then col2im scatter into the output.
fn transpose_forward(
    xa: &ArrayD<f64>,
    wa: &ArrayD<f64>,
    geom: &TransposeAttrs,
    a: &ConvArgs,
    b: Option<&[f64]>,
) -> ArrayD<f64> {
    let (xs, ws) = (xa.shape(), wa.shape());
    let (n, c) = (xs[0], xs[1]);
    let (g, cg, mg) = (a.group, c / a.group, ws[1]);
    let m = mg * g;
    let kernel = &ws[2..];
    let kc: usize = kernel.iter().product();
    let in_sp = &xs[2..];
    let isize_: usize = in_sp.iter().product();
    let out_sp = &geom.out;
    let begin: Vec<i64> = geom.pads.iter().map(|p| p.0).collect();
    let osize: usize = out_sp.iter().product();
    let xc = xa.as_standard_layout();
    let xv = xc.as_slice().expect("standard layout");
    let wc = wa.as_standard_layout();
    let wv = wc.as_slice().expect("standard layout");
    let rows = mg * kc;
    let mut y = vec![0.0; n * m * osize];
    for (plane, chunk) in y.chunks_mut(osize).enumerate() {
        let add = b.map_or(0.0, |b| b[plane % m]);
        chunk.iter_mut().for_each(|v| *v = add);
    }
    let blk = block_len(rows, isize_);
    let mut start = 0;
    while start < isize_ {
        let end = (start + blk).min(isize_);
        let len = end - start;
        let offs = tap_offsets(
            start..end,
            in_sp,
            out_sp,
            kernel,
            &a.strides,
            &a.dil,
            &begin,
        );
        let mut cols = Array2::<f64>::zeros((rows, len));
        for ni in 0..n {
            for gi in 0..g {
                let xg = ArrayView2::from_shape(
                    (cg, isize_),
                    &xv[(ni * c + gi * cg) * isize_..][..cg * isize_],
                )
                .expect("X block");
                let wg = ArrayView2::from_shape((cg, rows), &wv[gi * cg * rows..][..cg * rows])
                    .expect("W block");
                dgemm_into(wg.t(), xg.slice(s![.., start..end]), cols.view_mut());
                for mi in 0..mg {
                    let dst = &mut y[(ni * m + gi * mg + mi) * osize..][..osize];
                    for kidx in 0..kc {
                        let o = &offs[kidx * len..][..len];
                        for (&off, &v) in o.iter().zip(cols.row(mi * kc + kidx)) {
                            if off >= 0 {
                                dst[off as usize] += v;
                            }
                        }
                    }
                }
            }
        }
        start = end;
    }
    let mut shape = vec![n, m];
    shape.extend_from_slice(out_sp);
    ArrayD::from_shape_vec(IxDyn(&shape), y).expect("conv transpose output shape")
}

#[cfg(test)]
mod tests {
    use super::super::linalg::tests::assert_close;
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use crate::graph::Attr;

    fn run(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        inputs: &[&super::RefTensor],
    ) -> (Vec<usize>, Vec<f64>) {
        let node = test_node(op, inputs.len(), 1, attrs);
        let args: Vec<Option<&super::RefTensor>> = inputs.iter().map(|t| Some(*t)).collect();
        let out = run_op(&node, opset, &args).unwrap();
        let t = out[0].as_ref().unwrap();
        (t.shape().to_vec(), t.floats().unwrap())
    }

    fn ramp(shape: &[usize], start: f64) -> super::RefTensor {
        let n: usize = shape.iter().product();
        f(shape, &(0..n).map(|i| start + i as f64).collect::<Vec<_>>())
    }

    #[test]
    fn conv_asymmetric_pads_strides_dilations() {
        // X 1x1x5x5 = 0..24, W 1x1x2x2 = [1,2,3,4], dilation 2, stride 2,
        // pads top 1, left 0, bottom 0, right 1. Output H: (5+1-3)/2+1 = 2, W: 2.
        // y[0,0] rows -1,1 cols 0,2: -1 row is pad -> 3*x[1,0] + 4*x[1,2] = 3*5+4*7 = 43
        // y[0,1] rows -1,1 cols 2,4: 3*7 + 4*9 = 57
        // y[1,0] rows 1,3 cols 0,2: 1*5+2*7+3*15+4*17 = 132
        // y[1,1] rows 1,3 cols 2,4: 1*7+2*9+3*17+4*19 = 152
        let x = ramp(&[1, 1, 5, 5], 0.0);
        let w = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let attrs = vec![
            ("strides", Attr::Ints(vec![2, 2])),
            ("dilations", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 0, 0, 1])),
        ];
        let (shape, y) = run("Conv", 13, attrs, &[&x, &w]);
        assert_eq!(shape, vec![1, 1, 2, 2]);
        assert_eq!(y, vec![43.0, 57.0, 132.0, 152.0]);
    }

    #[test]
    fn conv_groups_and_bias() {
        // 2 groups, 1-D: X channels [1,2,3], [10,20,30]; W[0] = [1,1], W[1] = [1,-1]; B = [100, 0]
        let x = f(&[1, 2, 3], &[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
        let w = f(&[2, 1, 2], &[1.0, 1.0, 1.0, -1.0]);
        let b = f(&[2], &[100.0, 0.0]);
        let (shape, y) = run("Conv", 11, vec![("group", Attr::Int(2))], &[&x, &w, &b]);
        assert_eq!(shape, vec![1, 2, 2]);
        assert_eq!(y, vec![103.0, 105.0, -10.0, -10.0]);
    }

    #[test]
    fn conv_same_lower_vs_upper() {
        // 1-D, in 4, k 2, stride 1: total pad 1. SAME_UPPER pads the end, SAME_LOWER the start.
        let x = f(&[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
        let w = f(&[1, 1, 2], &[1.0, 10.0]);
        let up = run(
            "Conv",
            11,
            vec![("auto_pad", Attr::String("SAME_UPPER".into()))],
            &[&x, &w],
        )
        .1;
        let lo = run(
            "Conv",
            11,
            vec![("auto_pad", Attr::String("SAME_LOWER".into()))],
            &[&x, &w],
        )
        .1;
        assert_eq!(up, vec![21.0, 32.0, 43.0, 4.0]);
        assert_eq!(lo, vec![10.0, 21.0, 32.0, 43.0]);
    }

    #[test]
    fn conv_transpose_output_padding_and_shape() {
        // X [1,2,3], W ones(3), stride 2: full = 2*(3-1)+3 = 7, values
        // positions: x0 -> 0,1,2; x1 -> 2,3,4; x2 -> 4,5,6 => [1,1,3,2,5,3,3]
        let x = f(&[1, 1, 3], &[1.0, 2.0, 3.0]);
        let w = f(&[1, 1, 3], &[1.0, 1.0, 1.0]);
        let (s, y) = run(
            "ConvTranspose",
            13,
            vec![("strides", Attr::Ints(vec![2]))],
            &[&x, &w],
        );
        assert_eq!(
            (s, y),
            (vec![1, 1, 7], vec![1.0, 1.0, 3.0, 2.0, 5.0, 3.0, 3.0])
        );
        // output_padding 1 appends one (zero) element at the end.
        let a = vec![
            ("strides", Attr::Ints(vec![2])),
            ("output_padding", Attr::Ints(vec![1])),
        ];
        let (s, y) = run("ConvTranspose", 13, a, &[&x, &w]);
        assert_eq!(
            (s, y),
            (vec![1, 1, 8], vec![1.0, 1.0, 3.0, 2.0, 5.0, 3.0, 3.0, 0.0])
        );
        // output_shape 4 with NOTSET at opset 13: total = 3, begin = 3 - 1 = 2, end = 1 -> [3,2,5,3]
        let a = vec![
            ("strides", Attr::Ints(vec![2])),
            ("output_shape", Attr::Ints(vec![4])),
        ];
        let (s, y) = run("ConvTranspose", 13, a.clone(), &[&x, &w]);
        assert_eq!((s, y), (vec![1, 1, 4], vec![3.0, 2.0, 5.0, 3.0]));
        // Opset 1-10 text: NOTSET puts begin = total/2 = 1 -> [1,3,2,5]
        let (_, y) = run("ConvTranspose", 10, a, &[&x, &w]);
        assert_eq!(y, vec![1.0, 3.0, 2.0, 5.0]);
        // SAME_UPPER (opset 13): output 6, total 1, begin 0 -> first six.
        let a = vec![
            ("strides", Attr::Ints(vec![2])),
            ("auto_pad", Attr::String("SAME_UPPER".into())),
        ];
        let (_, y) = run("ConvTranspose", 13, a, &[&x, &w]);
        assert_eq!(y, vec![1.0, 1.0, 3.0, 2.0, 5.0, 3.0]);
    }

    #[test]
    fn conv_transpose_groups_dilation_bias() {
        // group 2, each group 1 in / 1 out channel; dilation 2 on kernel [1,2]:
        // channel 0 x=[1,2]: taps at 0 (w=1) and 2 (w=2) -> [1,2,2,4]; +B 1
        // channel 1 x=[3,4], w=[1,0]: -> [3,4,0,0]; +B 0
        let x = f(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let w = f(&[2, 1, 2], &[1.0, 2.0, 1.0, 0.0]);
        let b = f(&[2], &[1.0, 0.0]);
        let a = vec![("group", Attr::Int(2)), ("dilations", Attr::Ints(vec![2]))];
        let (s, y) = run("ConvTranspose", 13, a, &[&x, &w, &b]);
        assert_eq!(s, vec![1, 2, 4]);
        assert_eq!(y, vec![2.0, 3.0, 3.0, 5.0, 3.0, 4.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_group_fails_without_panic() {
        let x = ramp(&[1, 3, 4], 0.0);
        let w = f(&[2, 1, 2], &[1.0; 4]);
        let node = test_node("Conv", 2, 1, vec![("group", Attr::Int(2))]);
        let e = run_op(&node, 13, &[Some(&x), Some(&w)]).err().unwrap();
        assert!(format!("{e:?}").contains("group"));
    }

    /// Deterministic pseudo-random values in [-1, 1).
    fn rand_vals(n: usize, seed: u64) -> Vec<f64> {
        use rand::{Rng, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
    }

    fn rand_t(shape: &[usize], seed: u64) -> super::RefTensor {
        f(shape, &rand_vals(shape.iter().product(), seed))
    }

    /// Row-major flat index of `idx` in `shape`.
    fn flat(idx: &[usize], shape: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
    }

    /// Every multi-index of `shape`, row-major.
    fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
        let total: usize = shape.iter().product();
        (0..total)
            .map(|mut t| {
                let mut v = vec![0; shape.len()];
                for i in (0..shape.len()).rev() {
                    v[i] = t % shape[i];
                    t /= shape[i];
                }
                v
            })
            .collect()
    }

    /// One random Conv/ConvTranspose geometry.
    struct Geo {
        n: usize,
        c: usize,
        m: usize,
        g: usize,
        sp: Vec<usize>,
        k: Vec<usize>,
        s: Vec<usize>,
        d: Vec<usize>,
        pads: Vec<usize>,
    }

    impl Geo {
        fn attrs(&self) -> Vec<(&'static str, Attr)> {
            let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
            vec![
                ("group", Attr::Int(self.g as i64)),
                ("strides", ints(&self.s)),
                ("dilations", ints(&self.d)),
                ("pads", ints(&self.pads)),
            ]
        }
    }

    /// The spec's Conv sum, one output element at a time.
    fn naive_conv(geo: &Geo, x: &[f64], w: &[f64], b: &[f64]) -> (Vec<usize>, Vec<f64>) {
        let r = geo.sp.len();
        let out: Vec<usize> = (0..r)
            .map(|i| {
                let ext = (geo.k[i] - 1) * geo.d[i] + 1;
                (geo.sp[i] + geo.pads[i] + geo.pads[r + i] - ext) / geo.s[i] + 1
            })
            .collect();
        let (cg, mg) = (geo.c / geo.g, geo.m / geo.g);
        let mut xs = vec![geo.n, geo.c];
        xs.extend(&geo.sp);
        let mut ws = vec![geo.m, cg];
        ws.extend(&geo.k);
        let mut ys = vec![geo.n, geo.m];
        ys.extend(&out);
        let mut y = vec![0.0; ys.iter().product()];
        for yi in indices(&ys) {
            let (ni, mi) = (yi[0], yi[1]);
            let mut acc = b[mi];
            for ci in 0..cg {
                for ki in indices(&geo.k) {
                    let pos: Vec<i64> = (0..r)
                        .map(|a| {
                            (yi[2 + a] * geo.s[a] + ki[a] * geo.d[a]) as i64 - geo.pads[a] as i64
                        })
                        .collect();
                    if pos
                        .iter()
                        .zip(&geo.sp)
                        .any(|(&p, &l)| p < 0 || p >= l as i64)
                    {
                        continue;
                    }
                    let mut xi = vec![ni, (mi / mg) * cg + ci];
                    xi.extend(pos.iter().map(|&p| p as usize));
                    let mut wi = vec![mi, ci];
                    wi.extend(&ki);
                    acc += w[flat(&wi, &ws)] * x[flat(&xi, &xs)];
                }
            }
            y[flat(&yi, &ys)] = acc;
        }
        (ys, y)
    }

    /// The spec's ConvTranspose scatter, one input element at a time.
    fn naive_conv_transpose(geo: &Geo, x: &[f64], w: &[f64], b: &[f64]) -> (Vec<usize>, Vec<f64>) {
        let r = geo.sp.len();
        let out: Vec<usize> = (0..r)
            .map(|i| {
                geo.s[i] * (geo.sp[i] - 1) + (geo.k[i] - 1) * geo.d[i] + 1
                    - geo.pads[i]
                    - geo.pads[r + i]
            })
            .collect();
        let (cg, mg) = (geo.c / geo.g, geo.m / geo.g);
        let mut xs = vec![geo.n, geo.c];
        xs.extend(&geo.sp);
        let mut ws = vec![geo.c, mg];
        ws.extend(&geo.k);
        let mut ys = vec![geo.n, geo.m];
        ys.extend(&out);
        let mut y = vec![0.0; ys.iter().product()];
        for yi in indices(&ys) {
            y[flat(&yi, &ys)] = b[yi[1]];
        }
        for xi in indices(&xs) {
            let (ni, ci) = (xi[0], xi[1]);
            for mo in 0..mg {
                for ki in indices(&geo.k) {
                    let pos: Vec<i64> = (0..r)
                        .map(|a| {
                            (xi[2 + a] * geo.s[a] + ki[a] * geo.d[a]) as i64 - geo.pads[a] as i64
                        })
                        .collect();
                    if pos.iter().zip(&out).any(|(&p, &l)| p < 0 || p >= l as i64) {
                        continue;
                    }
                    let mut yi = vec![ni, (ci / cg) * mg + mo];
                    yi.extend(pos.iter().map(|&p| p as usize));
                    let mut wi = vec![ci, mo];
                    wi.extend(&ki);
                    y[flat(&yi, &ys)] += w[flat(&wi, &ws)] * x[flat(&xi, &xs)];
                }
            }
        }
        (ys, y)
    }

    /// Random geometries covering every Conv path: pointwise, depthwise,
    /// grouped and dense im2col; 1-D/2-D/3-D, dilations, strides and
    /// asymmetric pads.
    fn geometries() -> Vec<Geo> {
        let geo =
            |n, c, m, g, sp: &[usize], k: &[usize], s: &[usize], d: &[usize], pads: &[usize]| Geo {
                n,
                c,
                m,
                g,
                sp: sp.to_vec(),
                k: k.to_vec(),
                s: s.to_vec(),
                d: d.to_vec(),
                pads: pads.to_vec(),
            };
        vec![
            geo(
                2,
                3,
                4,
                1,
                &[7, 6],
                &[1, 1],
                &[1, 1],
                &[1, 1],
                &[0, 0, 0, 0],
            ),
            geo(
                1,
                4,
                6,
                2,
                &[5, 5],
                &[1, 1],
                &[1, 1],
                &[2, 1],
                &[0, 0, 0, 0],
            ),
            geo(
                2,
                4,
                4,
                4,
                &[6, 7],
                &[3, 3],
                &[1, 2],
                &[1, 1],
                &[1, 0, 2, 1],
            ),
            geo(1, 3, 3, 3, &[9], &[3], &[2], &[2], &[2, 1]),
            geo(
                2,
                6,
                4,
                2,
                &[7, 5],
                &[3, 2],
                &[2, 1],
                &[2, 1],
                &[1, 0, 0, 2],
            ),
            geo(
                1,
                2,
                3,
                1,
                &[4, 5, 3],
                &[2, 3, 2],
                &[1, 2, 1],
                &[1, 1, 2],
                &[0, 1, 1, 1, 0, 1],
            ),
            geo(1, 3, 5, 1, &[11], &[4], &[3], &[1], &[0, 3]),
        ]
    }

    /// The naive result of one geometry: output shape and values.
    type Naive = fn(&Geo, &[f64], &[f64], &[f64]) -> (Vec<usize>, Vec<f64>);

    /// `op` on random inputs of every geometry (weights of shape
    /// `[first, second, kernel...]` from `weight`) against `naive`.
    fn matches_naive(op: &str, seed0: u64, weight: fn(&Geo) -> [usize; 2], naive: Naive) {
        for (i, geo) in geometries().iter().enumerate() {
            let seed = seed0 + 10 * i as u64;
            let mut xs = vec![geo.n, geo.c];
            xs.extend(&geo.sp);
            let mut ws = weight(geo).to_vec();
            ws.extend(&geo.k);
            let (x, w, b) = (
                rand_t(&xs, seed),
                rand_t(&ws, seed + 1),
                rand_t(&[geo.m], seed + 2),
            );
            let (shape, y) = run(op, 13, geo.attrs(), &[&x, &w, &b]);
            let fl = |t: &super::RefTensor| t.floats().unwrap();
            let (want_shape, want) = naive(geo, &fl(&x), &fl(&w), &fl(&b));
            assert_eq!(shape, want_shape, "{op}, geometry {i}");
            assert_close(&y, &want);
        }
    }

    #[test]
    fn conv_paths_match_the_naive_sum() {
        matches_naive("Conv", 0, |g| [g.m, g.c / g.g], naive_conv);
    }

    #[test]
    fn conv_transpose_matches_the_naive_scatter() {
        matches_naive(
            "ConvTranspose",
            100,
            |g| [g.c, g.m / g.g],
            naive_conv_transpose,
        );
    }
}
