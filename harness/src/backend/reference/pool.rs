//! Reference ops: pooling (MaxPool, AveragePool, GlobalAveragePool).
//!
//! Pooling is where frameworks disagree quietly: ceil_mode and the rule that
//! drops a last window starting in the right padding, count_include_pad (and
//! its divisor when a ceil-mode window runs past the padding), SAME_* splits,
//! and MaxPool's flat Indices over N·C·spatial with storage_order. The window
//! geometry (pads, output lengths, ceil_mode's dropped last window) is decoded
//! once for every backend in `op::window`; this file spells out the rest per
//! spatial axis: an axis yields, for every output
//! position, the input positions its window reads and how many of the window's
//! taps lie inside the padded extent; windows are the cartesian product of the
//! axes, walked in row-major order.

use ndarray::{ArrayD, Axis, IxDyn};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::window::{self, WindowAttrs};
use crate::tensor::{DType, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes (1-D/2-D/3-D)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    // MaxPool: 8 adds storage_order and the Indices output, 10 dilations and
    // ceil_mode, 12 int8/uint8, 22 bfloat16.
    for (since, until) in [(1, 7), (8, 9), (10, 11), (12, u32::MAX)] {
        r.range(
            "MaxPool",
            since,
            until,
            max_pool,
            "https://onnx.ai/onnx/operators/onnx__MaxPool.html",
            SPEC,
        );
    }
    // AveragePool: 7 adds count_include_pad, 10 ceil_mode, 19 dilations.
    for (since, until) in [(1, 6), (7, 9), (10, 18), (19, u32::MAX)] {
        r.range(
            "AveragePool",
            since,
            until,
            average_pool,
            "https://onnx.ai/onnx/operators/onnx__AveragePool.html",
            SPEC,
        );
    }
    r.op(
        "GlobalAveragePool",
        global_average_pool,
        "https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html",
        SPEC,
    );
}

/// The decoded window of a pooling node over X = [N, C, D1, ...].
fn window(ctx: &OpCtx, xs: &[usize]) -> OpResult<WindowAttrs> {
    if xs.len() < 3 {
        return Err(ctx.fail(format!(
            "input X has shape {xs:?}, expected [N, C, D1, ...]"
        )));
    }
    WindowAttrs::decode(ctx, &xs[2..], None)
}

/// Per output position of one axis: the in-range input positions of its
/// window and the number of taps inside the padded extent [−begin, in + end).
fn axis_taps(w: &WindowAttrs, i: usize, input: usize) -> Vec<(Vec<usize>, usize)> {
    let (k, s, d) = (w.kernel[i], w.strides[i], w.dilations[i]);
    let (begin, end) = w.pads[i];
    (0..w.out[i])
        .map(|o| {
            let mut valid = Vec::new();
            let mut padded = 0;
            for j in 0..k {
                let p = (o * s) as i64 - begin + (j * d) as i64;
                if p >= -begin && p < input as i64 + end {
                    padded += 1;
                }
                if p >= 0 && p < input as i64 {
                    valid.push(p as usize);
                }
            }
            (valid, padded)
        })
        .collect()
}

/// Every output position's window as plane offsets (row-major window order,
/// padding skipped) and its padded-extent tap count.
pub(super) struct Windows {
    pub(super) out_shape: Vec<usize>,
    pub(super) offsets: Vec<Vec<usize>>,
    pub(super) padded: Vec<usize>,
}

pub(super) fn windows(plane: &[usize], w: &WindowAttrs) -> Windows {
    let taps: Vec<_> = (0..plane.len())
        .map(|i| axis_taps(w, i, plane[i]))
        .collect();
    let out_shape = w.out.clone();
    let total: usize = out_shape.iter().product();
    let mut pst = vec![1; plane.len()];
    for i in (0..plane.len().saturating_sub(1)).rev() {
        pst[i] = pst[i + 1] * plane[i + 1];
    }
    let mut offsets = Vec::with_capacity(total);
    let mut padded = Vec::with_capacity(total);
    let mut o = vec![0usize; plane.len()];
    for _ in 0..total {
        let axes: Vec<&(Vec<usize>, usize)> = (0..plane.len()).map(|i| &taps[i][o[i]]).collect();
        padded.push(axes.iter().map(|a| a.1).product());
        let mut offs = vec![0usize];
        for (i, a) in axes.iter().enumerate() {
            let st = pst[i];
            offs = offs
                .iter()
                .flat_map(|&base| a.0.iter().map(move |&p| base + p * st))
                .collect();
        }
        offsets.push(offs);
        // advance the row-major output odometer
        for i in (0..plane.len()).rev() {
            o[i] += 1;
            if o[i] < out_shape[i] {
                break;
            }
            o[i] = 0;
        }
    }
    Windows {
        out_shape,
        offsets,
        padded,
    }
}

/// Index of the maximum in a window (first one on ties; the first NaN wins,
/// so NaN propagates as in the Max op).
fn argmax(plane: &[f64], offs: &[usize]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for &off in offs {
        let v = plane[off];
        match best {
            None => best = Some(off),
            Some(b) => {
                let bv = plane[b];
                if !bv.is_nan() && (v > bv || v.is_nan()) {
                    best = Some(off);
                }
            }
        }
    }
    best
}

/// A plane offset (row-major) re-expressed column-major (storage_order = 1).
fn column_major(off: usize, plane: &[usize]) -> usize {
    let mut rest = off;
    let mut coords = vec![0; plane.len()];
    for i in (0..plane.len()).rev() {
        coords[i] = rest % plane[i];
        rest /= plane[i];
    }
    let mut idx = 0;
    let mut mul = 1;
    for i in 0..plane.len() {
        idx += coords[i] * mul;
        mul *= plane[i];
    }
    idx
}

/// MaxPool-1/8/10/11/12/22 (<https://onnx.ai/onnx/operators/onnx__MaxPool.html>).
/// Max over the window, padding excluded. Opset 8 adds storage_order and the
/// optional Indices output: the flat index into X (N·C·spatial, so
/// (n·C + c)·plane + offset), the offset column-major when storage_order = 1;
/// 10 adds dilations and ceil_mode; 12 int8/uint8 (kept exact); 22 bfloat16.
fn max_pool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xs = xt.shape().to_vec();
    let w = window(ctx, &xs)?;
    let col_major = window::column_major(ctx)?;
    let want_indices = ctx.wants_output(1);
    if want_indices && ctx.opset < 8 {
        return Err(ctx.fail(format!(
            "output Indices is not defined before opset 8 (node at opset {})",
            ctx.opset
        )));
    }
    if !(xt.is_float() || matches!(xt.dtype, DType::I8 | DType::U8)) {
        return Err(ctx.fail(format!(
            "input X has dtype {}, expected a float type, int8 or uint8",
            xt.dtype
        )));
    }
    let vals = xt.data.to_f64_vec();
    let plane = &xs[2..];
    let psize: usize = plane.iter().product();
    let win = windows(plane, &w);
    let osize: usize = win.out_shape.iter().product();
    let mut y = Vec::with_capacity(xs[0] * xs[1] * osize);
    let mut idx = Vec::with_capacity(if want_indices { y.capacity() } else { 0 });
    for (pi, p) in vals.chunks(psize.max(1)).enumerate().take(xs[0] * xs[1]) {
        for offs in &win.offsets {
            let Some(best) = argmax(p, offs) else {
                return Err(ctx.fail("a pooling window lies entirely in the padding (attribute `pads` >= the dilated kernel)"));
            };
            y.push(p[best]);
            if want_indices {
                let within = if col_major {
                    column_major(best, plane)
                } else {
                    best
                };
                idx.push((pi * psize + within) as i64);
            }
        }
    }
    let mut shape = vec![xs[0], xs[1]];
    shape.extend_from_slice(&win.out_shape);
    let yt = if xt.is_float() {
        RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(&shape), y).expect("pool shape"),
            xt.dtype,
        )
    } else {
        RefTensor::exact(Tensor::from_f64(xt.dtype, &shape, &y))
    };
    let mut outs = vec![Some(yt)];
    if want_indices {
        let it = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&shape), idx).expect("pool shape"));
        outs.push(Some(RefTensor::exact(it)));
    }
    Ok(Lowered {
        outputs: outs,
        how: How::Spec,
    })
}

/// AveragePool-1/7/10/11/19/22 (<https://onnx.ai/onnx/operators/onnx__AveragePool.html>).
/// Sum of the window's in-range values divided by their count
/// (count_include_pad = 0, the default) or by the number of taps inside the
/// padded extent (count_include_pad = 1; a ceil_mode window running past the
/// end padding is clipped there). Opset 7 adds count_include_pad, 10
/// ceil_mode, 19 dilations, 22 bfloat16.
fn average_pool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = xt.f64()?;
    let xs = xa.shape().to_vec();
    let w = window(ctx, &xs)?;
    let include_pad = w.count_include_pad;
    let xc = xa.as_standard_layout();
    let vals = xc.as_slice().expect("standard layout");
    let plane = &xs[2..];
    let psize: usize = plane.iter().product();
    let win = windows(plane, &w);
    let mut y = Vec::new();
    for p in vals.chunks(psize.max(1)).take(xs[0] * xs[1]) {
        for (offs, &padded) in win.offsets.iter().zip(&win.padded) {
            let sum: f64 = offs.iter().map(|&o| p[o]).sum();
            let count = if include_pad { padded } else { offs.len() };
            y.push(sum / count as f64);
        }
    }
    let mut shape = vec![xs[0], xs[1]];
    shape.extend_from_slice(&win.out_shape);
    let out = ArrayD::from_shape_vec(IxDyn(&shape), y).expect("pool shape");
    Ok(Lowered::one(RefTensor::float(out, xt.dtype), How::Spec))
}

/// GlobalAveragePool-1/22 (<https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html>):
/// the mean over all spatial axes, kept as size-1 axes ([N, C, 1, ...]).
fn global_average_pool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = xt.f64()?;
    if xa.ndim() < 2 {
        return Err(ctx.fail(format!(
            "input X has shape {:?}, expected [N, C, ...]",
            xa.shape()
        )));
    }
    let mut out = xa.clone();
    for ax in 2..xa.ndim() {
        let n = out.shape()[ax] as f64;
        out = out.sum_axis(Axis(ax)).insert_axis(Axis(ax)).mapv(|v| v / n);
    }
    Ok(Lowered::one(RefTensor::float(out, xt.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use super::RefTensor;
    use crate::graph::Attr;
    use crate::tensor::{DType, Tensor};

    fn run(
        op: &str,
        opset: u32,
        n_out: usize,
        attrs: Vec<(&str, Attr)>,
        x: &RefTensor,
    ) -> Vec<RefTensor> {
        let node = test_node(op, 1, n_out, attrs);
        run_op(&node, opset, &[Some(x)])
            .unwrap()
            .into_iter()
            .map(|t| t.unwrap())
            .collect()
    }

    fn ramp(shape: &[usize]) -> RefTensor {
        let n: usize = shape.iter().product();
        f(shape, &(0..n).map(|i| i as f64).collect::<Vec<_>>())
    }

    #[test]
    fn maxpool_ceil_drops_window_starting_in_pad() {
        // 1-D in 4, k 2, s 2, pads (1, 1), ceil: ceil((4+2-2)/2)+1 = 3; the 3rd window
        // starts at 2*2-1 = 3, inside the input ((3-1)*2 = 4 < 4+1): kept. Windows [0], [1,2], [3].
        let x = f(&[1, 1, 4], &[5.0, 1.0, 7.0, 2.0]);
        let a = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("strides", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 1])),
            ("ceil_mode", Attr::Int(1)),
        ];
        let y = &run("MaxPool", 12, 1, a, &x)[0];
        assert_eq!(
            (y.shape().to_vec(), y.floats().unwrap()),
            (vec![1, 1, 3], vec![5.0, 7.0, 2.0])
        );
        // in 4, k 2, s 2, pads (0, 1), ceil: ceil((4+1-2)/2)+1 = 3, but the 3rd window
        // starts at 4 >= 4 (in the right padding) -> dropped: 2 outputs.
        let a = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("strides", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![0, 1])),
            ("ceil_mode", Attr::Int(1)),
        ];
        let y = &run("MaxPool", 12, 1, a, &x)[0];
        assert_eq!(
            (y.shape().to_vec(), y.floats().unwrap()),
            (vec![1, 1, 2], vec![5.0, 7.0])
        );
    }

    #[test]
    fn maxpool_indices_flat_over_nc_and_storage_order() {
        // X 1x2x2x3: channel 0 = 0..5, channel 1 = 6..11; k 2x2 stride 1 -> out 1x2.
        // Max of each window is its bottom-right: channel 0 (1,1)=4, (1,2)=5; channel 1 10, 11.
        let x = ramp(&[1, 2, 2, 3]);
        let a = vec![("kernel_shape", Attr::Ints(vec![2, 2]))];
        let out = run("MaxPool", 12, 2, a.clone(), &x);
        assert_eq!(out[0].floats().unwrap(), vec![4.0, 5.0, 10.0, 11.0]);
        // Row-major: (h*3 + w) + plane*6.
        assert_eq!(
            out[1].data,
            Tensor::I64(
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 2, 1, 2]), vec![4, 5, 10, 11])
                    .unwrap()
            )
        );
        // Column-major: h + w*2 + plane*6: (1,1) -> 3, (1,2) -> 5; +6 -> 9, 11.
        let mut a2 = a;
        a2.push(("storage_order", Attr::Int(1)));
        let out = run("MaxPool", 12, 2, a2, &x);
        assert_eq!(out[1].data.to_i64_vec().unwrap(), vec![3, 5, 9, 11]);
    }

    #[test]
    fn maxpool_uint8_keeps_dtype_and_pads_are_ignored() {
        let x = RefTensor::exact(Tensor::from_f64(
            DType::U8,
            &[1, 1, 3],
            &[200.0, 3.0, 250.0],
        ));
        let a = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 1])),
        ];
        let y = &run("MaxPool", 12, 1, a, &x)[0];
        assert_eq!(y.dtype, DType::U8);
        assert_eq!(y.data.to_f64_vec(), vec![200.0, 200.0, 250.0, 250.0]);
    }

    #[test]
    fn maxpool_all_negative_border_is_not_zero() {
        let x = f(&[1, 1, 2], &[-3.0, -1.0]);
        let a = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 1])),
        ];
        assert_eq!(
            run("MaxPool", 12, 1, a, &x)[0].floats().unwrap(),
            vec![-3.0, -1.0, -1.0]
        );
    }

    #[test]
    fn averagepool_count_include_pad_corners() {
        // 3x3 ones-like ramp 1..9, k 3, pad 1: corner (0,0) window covers 1,2,4,5.
        let x = f(
            &[1, 1, 3, 3],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        );
        let base = vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ];
        let y0 = run("AveragePool", 11, 1, base.clone(), &x)[0]
            .floats()
            .unwrap();
        assert_eq!(y0[0], 12.0 / 4.0);
        assert_eq!(y0[4], 5.0);
        assert_eq!(y0[8], (5.0 + 6.0 + 8.0 + 9.0) / 4.0);
        let mut a1 = base;
        a1.push(("count_include_pad", Attr::Int(1)));
        let y1 = run("AveragePool", 11, 1, a1, &x)[0].floats().unwrap();
        assert_eq!(y1[0], 12.0 / 9.0);
        assert_eq!(y1[1], (1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0) / 9.0);
    }

    #[test]
    fn averagepool_ceil_divisor_clipped_to_padded_extent() {
        // 1-D in 6, k 3, s 2, pads (1,1), ceil: ceil((6+2-3)/2)+1 = 4, last start 6-1=5 < 6: kept.
        // Last window taps 5, 6, 7: 5 valid, 6 is pad, 7 is beyond the padded extent [-1, 7).
        let x = f(&[1, 1, 6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut a = vec![
            ("kernel_shape", Attr::Ints(vec![3])),
            ("strides", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 1])),
            ("ceil_mode", Attr::Int(1)),
        ];
        let y = run("AveragePool", 11, 1, a.clone(), &x)[0]
            .floats()
            .unwrap();
        assert_eq!(y, vec![1.5, 3.0, 5.0, 6.0]);
        a.push(("count_include_pad", Attr::Int(1)));
        let y = run("AveragePool", 11, 1, a, &x)[0].floats().unwrap();
        assert_eq!(y, vec![3.0 / 3.0, 9.0 / 3.0, 15.0 / 3.0, 6.0 / 2.0]);
    }

    #[test]
    fn averagepool_dilations_need_opset_19() {
        let x = ramp(&[1, 1, 5]);
        let a = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("dilations", Attr::Ints(vec![2])),
        ];
        assert_eq!(
            run("AveragePool", 19, 1, a.clone(), &x)[0]
                .floats()
                .unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        let node = test_node("AveragePool", 1, 1, a);
        assert!(run_op(&node, 18, &[Some(&x)]).is_err());
    }

    #[test]
    fn same_lower_vs_upper_max() {
        // docs/conventions.md: 4x4 ramp, k2 max, SAME_LOWER row 0 [0,1,2,3], SAME_UPPER [5,6,7,7].
        let x = ramp(&[1, 1, 4, 4]);
        let lo = vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("auto_pad", Attr::String("SAME_LOWER".into())),
        ];
        let up = vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("auto_pad", Attr::String("SAME_UPPER".into())),
        ];
        assert_eq!(
            run("MaxPool", 12, 1, lo, &x)[0].floats().unwrap()[..4],
            [0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(
            run("MaxPool", 12, 1, up, &x)[0].floats().unwrap()[..4],
            [5.0, 6.0, 7.0, 7.0]
        );
    }

    #[test]
    fn global_average_pool_keeps_axes() {
        let x = ramp(&[1, 2, 2, 2]);
        let y = &run("GlobalAveragePool", 13, 1, vec![], &x)[0];
        assert_eq!(y.shape(), &[1, 2, 1, 1]);
        assert_eq!(y.floats().unwrap(), vec![1.5, 5.5]);
    }
}
