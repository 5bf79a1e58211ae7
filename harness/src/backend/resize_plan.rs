//! The host-side ONNX Resize index plan shared by the framework lowerings.
//!
//! libtorch and candle have native upsample ops for only a few ONNX
//! attribute combinations; every other convention is *composed*: the ONNX
//! source coordinates (per `coordinate_transformation_mode`), nearest
//! indices (per `nearest_mode`) and linear/cubic taps are computed here on
//! the host in f64, axis by axis, and each backend applies them with its own
//! gather/lerp ops (`index_select`, `mul`, `add`). The idiomatic-port lane's
//! output size for `keep_aspect_ratio_policy` is computed here too.
//!
//! The float64 reference (`backend/reference/resize.rs`) deliberately does
//! NOT use this module: the reference is the oracle that judges these
//! lowerings, so it keeps its own independent implementation of the spec.

/// ONNX source coordinate of output index `x` on one axis, per
/// `coordinate_transformation_mode` (anything unrecognised is asymmetric;
/// tf_crop_and_resize is rejected by the callers).
pub fn source_coord(coord: &str, x: f64, scale: f64, len_in: f64, len_out: f64) -> f64 {
    match coord {
        "half_pixel" => (x + 0.5) / scale - 0.5,
        "pytorch_half_pixel" => {
            if len_out > 1.0 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        "half_pixel_symmetric" => {
            let adjustment = len_out / (scale * len_in);
            let offset = len_in / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        "align_corners" => {
            if len_out == 1.0 {
                0.0
            } else {
                x * (len_in - 1.0) / (len_out - 1.0)
            }
        }
        "tf_half_pixel_for_nn" => (x + 0.5) / scale,
        _ => x / scale, // asymmetric
    }
}

/// ONNX `nearest_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Floor,
    Ceil,
    RoundPreferFloor,
    RoundPreferCeil,
}

impl Rounding {
    /// Parses an ONNX `nearest_mode`; `None` for anything else (each backend
    /// chooses its own fallback).
    pub fn parse(mode: &str) -> Option<Rounding> {
        match mode {
            "floor" => Some(Rounding::Floor),
            "ceil" => Some(Rounding::Ceil),
            "round_prefer_floor" => Some(Rounding::RoundPreferFloor),
            "round_prefer_ceil" => Some(Rounding::RoundPreferCeil),
            _ => None,
        }
    }
}

/// ONNX nearest source index for coordinate `c` on an axis of `len_in`
/// elements (clamped to the axis, as the spec's edge padding does).
pub fn nearest_index(c: f64, rounding: Rounding, len_in: i64) -> i64 {
    let f = c.floor();
    let v = match rounding {
        Rounding::Floor => f,
        Rounding::Ceil => c.ceil(),
        Rounding::RoundPreferCeil if c - f == 0.5 => f + 1.0,
        Rounding::RoundPreferFloor if c - f == 0.5 => f,
        _ => c.round(),
    };
    (v as i64).clamp(0, len_in - 1)
}

/// ONNX nearest source indices for one axis.
pub fn nearest_indices(
    coord: &str,
    rounding: Rounding,
    scale: f64,
    len_in: usize,
    len_out: usize,
) -> Vec<i64> {
    (0..len_out)
        .map(|x| {
            let c = source_coord(coord, x as f64, scale, len_in as f64, len_out as f64);
            nearest_index(c, rounding, len_in as i64)
        })
        .collect()
}

/// Linear taps at coordinate `c`: the two neighbours (clamped to the axis)
/// and the fraction `r` of the way from the first to the second.
pub fn linear_taps(c: f64, len_in: i64) -> (i64, i64, f64) {
    let f = c.floor();
    let clamp = |v: i64| v.clamp(0, len_in - 1);
    (clamp(f as i64), clamp(f as i64 + 1), c - f)
}

/// Cubic taps (index, weight) at coordinate `c` with coefficient `a`; with
/// `exclude_outside` the taps outside the axis get weight 0 and the others
/// are renormalised. Indices are clamped to the axis.
pub fn cubic_taps(c: f64, a: f64, exclude_outside: bool, len_in: i64) -> Vec<(i64, f64)> {
    let last = len_in - 1;
    let clamp = |v: i64| v.clamp(0, last);
    let f = c.floor();
    let r = c - f;
    let w = [
        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
        ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
        ((a * (2.0 - r) - 5.0 * a) * (2.0 - r) + 8.0 * a) * (2.0 - r) - 4.0 * a,
    ];
    let raw: Vec<(i64, f64)> = (0..4).map(|t| (f as i64 - 1 + t as i64, w[t])).collect();
    if exclude_outside {
        let keep = |j: i64| (0..=last).contains(&j);
        let sum: f64 = raw.iter().filter(|(j, _)| keep(*j)).map(|(_, w)| w).sum();
        raw.into_iter()
            .map(|(j, w)| (clamp(j), if keep(j) { w / sum } else { 0.0 }))
            .collect()
    } else {
        raw.into_iter().map(|(j, w)| (clamp(j), w)).collect()
    }
}

/// The one scale `keep_aspect_ratio_policy` applies to every resized axis,
/// from the per-axis ratios size / in; `None` for an unknown policy
/// (`stretch` keeps per-axis sizes and is handled by the callers).
fn keep_aspect_scale(policy: &str, ratios: impl Iterator<Item = f64>) -> Option<f64> {
    match policy {
        "not_larger" => Some(ratios.fold(f64::INFINITY, f64::min)),
        "not_smaller" => Some(ratios.fold(0.0, f64::max)),
        _ => None,
    }
}

/// Output length under `keep_aspect_ratio_policy` (spec: round(in · scale)).
fn keep_aspect_len(len_in: f64, scale: f64) -> f64 {
    (len_in * scale + 0.5).floor()
}

/// Output lengths and per-axis coordinate scales of a Resize given `sizes`
/// for `axes`. With `stretch` each resized axis gets its size and maps with
/// out/in; otherwise every axis in `axes` gets one policy scale `s`, the
/// length round(in · s), and maps with `s` (not out/in). Axes not resized
/// keep their length and scale 1. Returns the policy scale when one applied,
/// and `None` for an unknown policy.
pub fn sizes_plan(
    dims: &[usize],
    axes: &[usize],
    sizes: &[usize],
    policy: &str,
) -> Option<(Vec<usize>, Vec<f64>, Option<f64>)> {
    let mut out = dims.to_vec();
    let mut policy_scale = None;
    if policy == "stretch" {
        for (&ax, &v) in axes.iter().zip(sizes) {
            out[ax] = v;
        }
    } else {
        let ratios = axes
            .iter()
            .zip(sizes)
            .map(|(&ax, &v)| v as f64 / dims[ax] as f64);
        let s = keep_aspect_scale(policy, ratios)?;
        for &ax in axes {
            out[ax] = keep_aspect_len(dims[ax] as f64, s) as usize;
        }
        policy_scale = Some(s);
    }
    let mut scale: Vec<f64> = out
        .iter()
        .zip(dims)
        .map(|(&o, &d)| o as f64 / d.max(1) as f64)
        .collect();
    if let Some(s) = policy_scale {
        for &ax in axes {
            scale[ax] = s;
        }
    }
    Some((out, scale, policy_scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_plan_maps_policy_axes_with_one_scale() {
        let (out, scale, s) = sizes_plan(&[1, 1, 2, 3], &[2, 3], &[4, 4], "not_larger").unwrap();
        assert_eq!(out, vec![1, 1, 3, 4]);
        assert_eq!(scale, vec![1.0, 1.0, 4.0 / 3.0, 4.0 / 3.0]);
        assert_eq!(s, Some(4.0 / 3.0));
        let (out, scale, s) = sizes_plan(&[1, 1, 2, 3], &[2, 3], &[4, 4], "not_smaller").unwrap();
        assert_eq!((out, s), (vec![1, 1, 4, 6], Some(2.0)));
        assert_eq!(scale[2..], [2.0, 2.0]);
        let (out, scale, s) = sizes_plan(&[1, 1, 2, 3], &[2, 3], &[4, 4], "stretch").unwrap();
        assert_eq!((out, s), (vec![1, 1, 4, 4], None));
        assert_eq!(scale[2..], [2.0, 4.0 / 3.0]);
        assert!(sizes_plan(&[2], &[0], &[4], "bogus").is_none());
    }

    #[test]
    fn onnx_nearest_index_tables() {
        // Default nearest (half_pixel, round_prefer_floor), 6 -> 2 picks the window centres.
        let pf = Rounding::RoundPreferFloor;
        assert_eq!(
            nearest_indices("half_pixel", pf, 2.0 / 6.0, 6, 2),
            vec![1, 4]
        );
        // 4 -> 2 tie: prefer floor [0, 2], prefer ceil [1, 3].
        assert_eq!(nearest_indices("half_pixel", pf, 0.5, 4, 2), vec![0, 2]);
        let pc = Rounding::RoundPreferCeil;
        assert_eq!(nearest_indices("half_pixel", pc, 0.5, 4, 2), vec![1, 3]);
        // asymmetric floor 3 -> 5 (sizes): [0, 0, 1, 1, 2].
        assert_eq!(
            nearest_indices("asymmetric", Rounding::Floor, 5.0 / 3.0, 3, 5),
            vec![0, 0, 1, 1, 2]
        );
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        for &c in &[0.0, 0.25, 1.5, 2.75] {
            for &ex in &[false, true] {
                let s: f64 = cubic_taps(c, -0.75, ex, 4).iter().map(|t| t.1).sum();
                assert!((s - 1.0).abs() < 1e-12, "{c} {ex} {s}");
            }
        }
    }
}
