//! Heatmaps of diverged nodes, written under `--out DIR/heatmaps/`.
//!
//! Drawn from a case's [`Evidence`] (the tensors of the run that was
//! reported, never a re-run): for the first divergence of each lane of a
//! case (at most [`MAX_IMAGES`] PNG files per run) the node's output is drawn:
//!
//! - `<case>-<variant>-<node>-<lane>.png`: |lane − reference|, one tile per
//!   channel of batch item 0 (up to [`MAX_CHANNELS`]) in a grid with 1-px
//!   dark blue separators, colour map inferno (0 = black, the largest finite
//!   difference = pale yellow, non-finite = cyan) and a gradient bar along
//!   the bottom. No text is drawn: the numeric scale is in the Markdown
//!   report and in the PNG's `tEXt` chunks.
//! - `…-sbs.png` when H·W ≤ 64×64: one row per channel, lane | reference |
//!   |diff|; the first two share a grey scale (grey bar under them), the
//!   third uses the heatmap's scale.
//!
//! Rank-3 outputs `N×C×L` are drawn as 1×L tiles, rank ≥ 5 outputs stack
//! the leading spatial dimensions vertically (`D·H × W`). Small planes are
//! enlarged by an integer factor (nearest neighbour), so one output pixel is
//! a visible block and a half-pixel shift shows as stripes; planes wider or
//! taller than [`MAX_SIDE`] are reduced by the maximum over blocks, so a
//! single bad pixel stays visible.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::links::{HeatmapLink, MAX_IMAGES};
use crate::diff::Comparison;
use crate::lane::REFERENCE;
use crate::outcome::{CaseReport, CaseRun, Evidence, Verdict};
use crate::tensor::Tensor;
/// Channels drawn per image, at most (the first ones).
pub const MAX_CHANNELS: usize = 16;
/// Planes up to this many pixels also get a side-by-side image.
pub const SIDE_BY_SIDE_MAX_PIXELS: usize = 64 * 64;
/// Planes are enlarged until their longer side reaches about this many pixels.
const TARGET_SIDE: usize = 128;
/// The largest enlargement factor.
const MAX_SCALE: usize = 32;
/// Planes with a side longer than this are reduced (max over blocks).
pub const MAX_SIDE: usize = 512;
/// Separator width between tiles.
const SEP: usize = 1;
/// Space between the tiles and the gradient bar.
const LEGEND_GAP: usize = 3;
/// Height of the gradient bar.
const LEGEND_HEIGHT: usize = 10;
/// Separators, background and empty grid slots: a dark blue found in
/// neither colour map, so tiles stay apart on black and on white.
const BACKGROUND: [u8; 3] = [40, 90, 160];
/// Pixels whose difference is NaN or infinite.
pub const NON_FINITE: [u8; 3] = [0, 200, 255];

/// The inferno colour map (matplotlib) for `t` in [0, 1] (clamped; NaN
/// reads as 0): black at 0, purple, red, orange, pale yellow at 1. A
/// degree-6 polynomial fit per channel, within about 1% of the table.
pub fn inferno(t: f64) -> [u8; 3] {
    const C: [[f64; 3]; 7] = [
        [
            0.000_218_940_369_119_226_5,
            0.001_651_004_631_001_012,
            -0.019_480_898_437_091_84,
        ],
        [
            0.106_513_419_485_611_6,
            0.563_956_436_788_409_1,
            3.932_712_388_889_277,
        ],
        [
            11.602_493_082_471_87,
            -3.972_853_965_665_698,
            -15.942_394_106_291_4,
        ],
        [
            -41.703_996_131_394_59,
            17.436_398_882_053_13,
            44.354_145_198_728_13,
        ],
        [
            77.162_935_699_427,
            -33.402_358_942_100_92,
            -81.807_309_257_389_93,
        ],
        [
            -71.319_428_244_992_14,
            32.626_064_263_977_23,
            73.209_519_858_032_02,
        ],
        [
            25.131_126_224_773_41,
            -12.242_668_952_385_67,
            -23.070_325_002_871_72,
        ],
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let mut rgb = [0u8; 3];
    for (k, px) in rgb.iter_mut().enumerate() {
        let v = C.iter().rev().fold(0.0, |acc, c| acc * t + c[k]);
        *px = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    rgb
}

/// Grey scale for `t` in [0, 1]: black to white.
pub fn grey(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let v = (t * 255.0).round() as u8;
    [v, v, v]
}

/// An RGB image, 8 bits per channel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Image {
        Image {
            width,
            height,
            rgb: fill.repeat(width * height),
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn fill_rect(&mut self, x0: usize, y0: usize, w: usize, h: usize, c: [u8; 3]) {
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let i = 3 * (y * self.width + x);
                self.rgb[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// Draws `plane` (h×w, row-major) at (x0, y0), each value a `scale`-pixel block.
    fn blit(
        &mut self,
        x0: usize,
        y0: usize,
        plane: &Plane,
        scale: usize,
        color: impl Fn(f64) -> [u8; 3],
    ) {
        for (i, &v) in plane.data.iter().enumerate() {
            let (r, c) = (i / plane.w, i % plane.w);
            self.fill_rect(x0 + c * scale, y0 + r * scale, scale, scale, color(v));
        }
    }

    /// A left-to-right gradient bar of `cmap` over [0, 1].
    fn gradient(&mut self, x0: usize, y0: usize, w: usize, h: usize, cmap: fn(f64) -> [u8; 3]) {
        for x in 0..w {
            let t = if w > 1 {
                x as f64 / (w - 1) as f64
            } else {
                0.0
            };
            self.fill_rect(x0 + x, y0, 1, h, cmap(t));
        }
    }

    /// PNG bytes, with `text` as `tEXt` chunks (keyword, text).
    pub fn to_png(&self, text: &[(&str, String)]) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut buf, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            for (k, v) in text {
                enc.add_text_chunk(k.to_string(), v.clone())
                    .map_err(std::io::Error::other)?;
            }
            let mut w = enc.write_header().map_err(std::io::Error::other)?;
            w.write_image_data(&self.rgb)
                .map_err(std::io::Error::other)?;
            w.finish().map_err(std::io::Error::other)?;
        }
        Ok(buf)
    }
}

/// One h×w plane of values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub h: usize,
    pub w: usize,
    pub data: Vec<f64>,
}

impl Plane {
    /// Reduces by `step` in both directions, keeping the largest value of
    /// each block (NaN wins, so non-finite pixels stay visible).
    fn max_pool(&self, step: usize) -> Plane {
        if step <= 1 {
            return self.clone();
        }
        let (h, w) = (self.h.div_ceil(step), self.w.div_ceil(step));
        let mut data = vec![f64::NEG_INFINITY; h * w];
        for (i, &v) in self.data.iter().enumerate() {
            let (r, c) = (i / self.w / step, i % self.w / step);
            let d = &mut data[r * w + c];
            if v.is_nan() || *d < v {
                *d = v;
            }
        }
        Plane { h, w, data }
    }
}

/// Batch item 0 of a rank ≥ 3 tensor as per-channel planes (the first
/// [`MAX_CHANNELS`]), and the channel count.
pub fn planes(t: &Tensor) -> Option<(Vec<Plane>, usize)> {
    let shape = t.shape();
    if shape.len() < 3 || shape.contains(&0) {
        return None;
    }
    let c = shape[1];
    let w = shape[shape.len() - 1];
    let h: usize = shape[2..shape.len() - 1].iter().product();
    let size = h * w;
    let shown = c.min(MAX_CHANNELS);
    let mut values = Vec::with_capacity(shown * size);
    t.for_each_f64(|v| {
        if values.len() < shown * size {
            values.push(v)
        }
    });
    let planes = values
        .chunks(size)
        .map(|d| Plane {
            h,
            w,
            data: d.to_vec(),
        })
        .collect();
    Some((planes, c))
}

/// |a − b|: 0 where both are equal (same infinity, both NaN), NaN where one is NaN.
fn abs_diff(a: f64, b: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        0.0
    } else {
        (a - b).abs()
    }
}

/// Where tiles go: `cols`×`rows` tiles of `tile_w`×`tile_h` pixels (plane
/// enlarged by `scale`, after reducing by `step`), separated by 1 px, and
/// a gradient bar at `legend_y` across the whole width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub cols: usize,
    pub rows: usize,
    pub step: usize,
    pub scale: usize,
    pub tile_w: usize,
    pub tile_h: usize,
    pub width: usize,
    pub height: usize,
    pub legend_y: usize,
}

impl Grid {
    /// A grid of `tiles` tiles of an h×w plane, `cols` wide (0: about square).
    pub fn new(tiles: usize, cols: usize, h: usize, w: usize) -> Grid {
        let tiles = tiles.max(1);
        let cols = if cols > 0 {
            cols
        } else if tiles <= 4 {
            tiles
        } else {
            (tiles as f64).sqrt().ceil() as usize
        };
        let rows = tiles.div_ceil(cols);
        let step = h.max(w).div_ceil(MAX_SIDE).max(1);
        let (ph, pw) = (h.div_ceil(step), w.div_ceil(step));
        let scale = (TARGET_SIDE / ph.max(pw)).clamp(1, MAX_SCALE);
        let (tile_w, tile_h) = (pw * scale, ph * scale);
        let width = cols * tile_w + (cols - 1) * SEP;
        let legend_y = rows * tile_h + (rows - 1) * SEP + LEGEND_GAP;
        Grid {
            cols,
            rows,
            step,
            scale,
            tile_w,
            tile_h,
            width,
            height: legend_y + LEGEND_HEIGHT,
            legend_y,
        }
    }

    /// Top-left pixel of tile `k` (row-major).
    pub fn origin(&self, k: usize) -> (usize, usize) {
        let (r, c) = (k / self.cols, k % self.cols);
        (c * (self.tile_w + SEP), r * (self.tile_h + SEP))
    }

    fn image(&self) -> Image {
        Image::new(self.width, self.height, BACKGROUND)
    }
}

/// A drawn image and the numbers its colours stand for.
#[derive(Debug, Clone)]
pub struct Figure {
    pub image: Image,
    /// The largest finite |diff| (pale yellow); 0 is black.
    pub max_diff: f64,
    /// The shared grey scale of a side-by-side image (black, white).
    pub grey: Option<(f64, f64)>,
    pub channels_shown: usize,
    pub channels_total: usize,
    /// Diff pixels (of the drawn channels) that are NaN or infinite.
    pub non_finite: usize,
}

fn diff_planes(got: &[Plane], want: &[Plane]) -> (Vec<Plane>, f64, usize) {
    let diffs: Vec<Plane> = got
        .iter()
        .zip(want)
        .map(|(g, r)| Plane {
            h: g.h,
            w: g.w,
            data: g
                .data
                .iter()
                .zip(&r.data)
                .map(|(&a, &b)| abs_diff(a, b))
                .collect(),
        })
        .collect();
    let all = diffs.iter().flat_map(|p| p.data.iter());
    let max = all
        .clone()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(v));
    let non_finite = all.filter(|v| !v.is_finite()).count();
    (diffs, max, non_finite)
}

/// Colours a value by `cmap` over [lo, hi]; non-finite values in [`NON_FINITE`].
fn scaled(lo: f64, hi: f64, cmap: fn(f64) -> [u8; 3]) -> impl Fn(f64) -> [u8; 3] {
    move |v: f64| {
        if !v.is_finite() {
            NON_FINITE
        } else if hi > lo {
            cmap((v - lo) / (hi - lo))
        } else {
            cmap(0.0)
        }
    }
}

fn same_layout(got: &Tensor, want: &Tensor) -> Option<(Vec<Plane>, Vec<Plane>, usize)> {
    if got.shape() != want.shape() {
        return None;
    }
    let (g, c) = planes(got)?;
    let (r, _) = planes(want)?;
    Some((g, r, c))
}

/// The |got − want| heatmap, one tile per channel of batch item 0.
pub fn diff_heatmap(got: &Tensor, want: &Tensor) -> Option<Figure> {
    let (g, r, c) = same_layout(got, want)?;
    let (diffs, max, non_finite) = diff_planes(&g, &r);
    let grid = Grid::new(diffs.len(), 0, diffs[0].h, diffs[0].w);
    let mut img = grid.image();
    let color = scaled(0.0, max, inferno);
    for (k, d) in diffs.iter().enumerate() {
        let (x, y) = grid.origin(k);
        img.blit(x, y, &d.max_pool(grid.step), grid.scale, &color);
    }
    img.gradient(0, grid.legend_y, grid.width, LEGEND_HEIGHT, inferno);
    Some(Figure {
        image: img,
        max_diff: max,
        grey: None,
        channels_shown: diffs.len(),
        channels_total: c,
        non_finite,
    })
}

/// One row per channel: got | want | |diff|, the first two on a shared grey
/// scale. `None` for planes over [`SIDE_BY_SIDE_MAX_PIXELS`].
pub fn side_by_side(got: &Tensor, want: &Tensor) -> Option<Figure> {
    let (g, r, c) = same_layout(got, want)?;
    let (h, w) = (g[0].h, g[0].w);
    if h * w > SIDE_BY_SIDE_MAX_PIXELS || h.max(w) > MAX_SIDE {
        return None;
    }
    let (diffs, max, non_finite) = diff_planes(&g, &r);
    let finite = g
        .iter()
        .chain(&r)
        .flat_map(|p| p.data.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 0.0) };
    let grid = Grid::new(3 * g.len(), 3, h, w);
    let mut img = grid.image();
    let shade = scaled(lo, hi, grey);
    let heat = scaled(0.0, max, inferno);
    for (k, ((a, b), d)) in g.iter().zip(&r).zip(&diffs).enumerate() {
        for (j, p) in [a, b].into_iter().enumerate() {
            let (x, y) = grid.origin(3 * k + j);
            img.blit(x, y, p, grid.scale, &shade);
        }
        let (x, y) = grid.origin(3 * k + 2);
        img.blit(x, y, d, grid.scale, &heat);
    }
    let (x2, _) = grid.origin(2);
    img.gradient(0, grid.legend_y, x2 - SEP, LEGEND_HEIGHT, grey);
    img.gradient(x2, grid.legend_y, grid.tile_w, LEGEND_HEIGHT, inferno);
    Some(Figure {
        image: img,
        max_diff: max,
        grey: Some((lo, hi)),
        channels_shown: g.len(),
        channels_total: c,
        non_finite,
    })
}

/// Keeps `[A-Za-z0-9._-]`, replaces anything else by `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A diverged node output to draw.
struct Target {
    lane: String,
    node: usize,
    output: String,
    shape: Vec<usize>,
}

/// The first divergence of each lane (not the reference) whose diverged
/// output has rank ≥ 3 and a metric comparison (same shape).
fn targets(report: &CaseReport) -> Vec<Target> {
    let mut out = Vec::new();
    for (lane, fd) in &report.first_divergence {
        if lane == REFERENCE || fd.verdict != Verdict::Diverged {
            continue;
        }
        let Some(node) = report.nodes.get(fd.index) else {
            continue;
        };
        let Some(x) = node.lanes.get(lane) else {
            continue;
        };
        let found = node.outputs.iter().find_map(|o| {
            let r = x.outputs.get(&o.name)?;
            let shape = o.shape.clone()?;
            (r.verdict == Verdict::Diverged
                && matches!(r.comparison, Some(Comparison::Metrics(_)))
                && shape.len() >= 3)
                .then(|| (o.name.clone(), shape))
        });
        if let Some((output, shape)) = found {
            out.push(Target {
                lane: lane.clone(),
                node: fd.index,
                output,
                shape,
            });
        }
    }
    out
}

/// Writes heatmaps for a run, at most [`MAX_IMAGES`] files.
pub struct HeatmapWriter {
    dir: PathBuf,
    written: usize,
    names: HashSet<String>,
    /// Divergences not drawn because the image budget was spent.
    pub skipped: usize,
}

impl HeatmapWriter {
    /// Writes into `dir` (created on the first image).
    pub fn new(dir: impl Into<PathBuf>) -> HeatmapWriter {
        HeatmapWriter {
            dir: dir.into(),
            written: 0,
            names: HashSet::new(),
            skipped: 0,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A unique file stem for this run, at most 200 bytes.
    fn stem<S: std::borrow::Borrow<str>>(&mut self, parts: &[S]) -> String {
        let mut base = sanitize(&parts.join("-"));
        base.truncate(200);
        let mut name = base.clone();
        let mut k = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        name
    }

    fn write(&mut self, name: &str, fig: &Figure, what: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut text = vec![
            ("Title", what.to_string()),
            ("xdiff-diff-scale", format!("0..{:e}", fig.max_diff)),
        ];
        if let Some((lo, hi)) = fig.grey {
            text.push(("xdiff-grey-scale", format!("{lo:e}..{hi:e}")));
        }
        std::fs::write(self.dir.join(name), fig.image.to_png(&text)?)?;
        self.written += 1;
        Ok(())
    }

    /// Draws the first divergence of each lane of a case from its evidence.
    pub fn case(&mut self, run: &CaseRun) -> std::io::Result<Vec<HeatmapLink>> {
        let targets = targets(&run.report);
        if targets.is_empty() {
            return Ok(vec![]);
        }
        if self.written >= MAX_IMAGES {
            self.skipped += targets.len();
            return Ok(vec![]);
        }
        let mut links = Vec::new();
        for t in targets {
            if self.written >= MAX_IMAGES {
                self.skipped += 1;
                continue;
            }
            if let Some(link) = self.draw(&run.report, &run.evidence, &t)? {
                links.push(link);
            }
        }
        Ok(links)
    }

    /// Draws one target (and its side-by-side image while the budget
    /// lasts); `None` when the evidence lacks its tensors or they do not
    /// make a picture.
    fn draw(
        &mut self,
        report: &CaseReport,
        evidence: &Evidence,
        t: &Target,
    ) -> std::io::Result<Option<HeatmapLink>> {
        let Some(pair) = evidence.get(&t.lane, &t.output) else {
            return Ok(None);
        };
        let (got, want) = (&pair.got, &pair.want);
        let Some(fig) = diff_heatmap(got, want) else {
            return Ok(None);
        };
        let case_id = report.id();
        let node = &report.nodes[t.node];
        let stem = self.stem(&stem_parts(report, t));
        let file = format!("{stem}.png");
        let what = format!("|{} - reference| of {} in {case_id}", t.lane, t.output);
        self.write(&file, &fig, &what)?;
        let mut link = HeatmapLink {
            case: case_id.clone(),
            lane: t.lane.clone(),
            node: node.name.clone(),
            op: node.op.clone(),
            output: t.output.clone(),
            shape: t.shape.clone(),
            file,
            side_by_side: None,
            max_diff: fig.max_diff,
            grey: None,
            channels_shown: fig.channels_shown,
            channels_total: fig.channels_total,
            non_finite: fig.non_finite,
        };
        if self.written < MAX_IMAGES {
            if let Some(sbs) = side_by_side(got, want) {
                let file = format!("{stem}-sbs.png");
                let what = format!("{} | reference | diff of {} in {case_id}", t.lane, t.output);
                self.write(&file, &sbs, &what)?;
                link.side_by_side = Some(file);
                link.grey = sbs.grey;
            }
        }
        Ok(Some(link))
    }
}

/// The parts of a heatmap's file name: case, variant, node (op and index
/// when unnamed), output (when the node has several) and lane.
fn stem_parts(report: &CaseReport, t: &Target) -> Vec<String> {
    let node = &report.nodes[t.node];
    let mut parts = vec![report.case.clone()];
    parts.extend(report.variant.clone());
    parts.push(if node.name.is_empty() {
        format!("{}{}", node.op, node.index)
    } else {
        node.name.clone()
    });
    if node.outputs.len() > 1 {
        parts.push(t.output.clone());
    }
    parts.push(t.lane.clone());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tensor(shape: &[usize], values: &[f64]) -> Tensor {
        Tensor::from_f64(crate::tensor::DType::F32, shape, values)
    }

    #[test]
    fn inferno_endpoints_and_middle() {
        let black = inferno(0.0);
        assert!(black.iter().all(|&c| c <= 5), "{black:?}");
        // matplotlib: inferno(1) = (0.988, 0.998, 0.645), inferno(0.5) = (0.736, 0.216, 0.330)
        let top = inferno(1.0);
        assert!(
            top[0] >= 245 && top[1] >= 245 && (155..=175).contains(&top[2]),
            "{top:?}"
        );
        let mid = inferno(0.5);
        let want = [0.736 * 255.0, 0.216 * 255.0, 0.330 * 255.0];
        for k in 0..3 {
            assert!((mid[k] as f64 - want[k]).abs() <= 5.0, "{mid:?}");
        }
        assert_eq!(inferno(-1.0), black);
        assert_eq!(inferno(f64::NAN), black);
        assert_eq!(inferno(2.0), top);
        // Perceptually ordered: brightness grows along the map.
        let lum = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        for i in 0..20 {
            assert!(lum(inferno(i as f64 / 20.0)) < lum(inferno((i + 1) as f64 / 20.0)));
        }
        assert_eq!(grey(0.0), [0, 0, 0]);
        assert_eq!(grey(1.0), [255, 255, 255]);
    }

    #[test]
    fn grid_for_three_channels_of_5x7() {
        let g = Grid::new(3, 0, 5, 7);
        // 128 / 7 = 18: tiles of 126×90 in one row with 1-px separators.
        assert_eq!((g.cols, g.rows, g.step, g.scale), (3, 1, 1, 18));
        assert_eq!((g.tile_w, g.tile_h), (126, 90));
        assert_eq!(g.width, 3 * 126 + 2);
        assert_eq!(g.legend_y, 90 + LEGEND_GAP);
        assert_eq!(g.height, 90 + LEGEND_GAP + LEGEND_HEIGHT);
        assert_eq!(g.origin(2), (2 * 127, 0));

        let t = tensor(&[1, 3, 5, 7], &(0..105).map(f64::from).collect::<Vec<_>>());
        let z = tensor(&[1, 3, 5, 7], &[0.0; 105]);
        let fig = diff_heatmap(&t, &z).unwrap();
        assert_eq!((fig.image.width, fig.image.height), (g.width, g.height));
        assert_eq!((fig.channels_shown, fig.channels_total), (3, 3));
        assert_eq!(fig.max_diff, 104.0);
        // Separator column between tiles 0 and 1; largest value bottom-right of tile 2.
        assert_eq!(fig.image.pixel(126, 10), BACKGROUND);
        assert_eq!(fig.image.pixel(0, 0), inferno(0.0));
        assert_eq!(fig.image.pixel(g.width - 1, 89), inferno(1.0));
        // Gradient bar: black on the left, pale yellow on the right.
        assert_eq!(fig.image.pixel(0, g.legend_y), inferno(0.0));
        assert_eq!(fig.image.pixel(g.width - 1, g.height - 1), inferno(1.0));

        let sbs = side_by_side(&t, &z).unwrap();
        let g3 = Grid::new(9, 3, 5, 7);
        assert_eq!((g3.cols, g3.rows), (3, 3));
        assert_eq!((sbs.image.width, sbs.image.height), (g3.width, g3.height));
        assert_eq!(sbs.grey, Some((0.0, 104.0)));

        // Many channels: an about square grid of the first 16.
        let g16 = Grid::new(16, 0, 5, 7);
        assert_eq!((g16.cols, g16.rows), (4, 4));
        let many = tensor(&[2, 20, 5, 7], &[1.0; 1400]);
        let (p, c) = planes(&many).unwrap();
        assert_eq!((p.len(), c), (MAX_CHANNELS, 20));
    }

    #[test]
    fn png_decodes_with_the_expected_size() {
        let t = tensor(
            &[1, 2, 7, 7],
            &(0..98).map(|i| (i % 5) as f64).collect::<Vec<_>>(),
        );
        let z = tensor(&[1, 2, 7, 7], &[0.0; 98]);
        let fig = diff_heatmap(&t, &z).unwrap();
        let bytes = fig
            .image
            .to_png(&[("xdiff-diff-scale", "0..4".into())])
            .unwrap();
        let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        // 7×7 enlarged 18×: 126-px tiles, two in a row.
        assert_eq!(
            (info.width, info.height),
            (2 * 126 + 1, (126 + LEGEND_GAP + LEGEND_HEIGHT) as u32)
        );
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &fig.image.rgb[..]);
        let texts = &reader.info().uncompressed_latin1_text;
        assert!(texts
            .iter()
            .any(|t| t.keyword == "xdiff-diff-scale" && t.text == "0..4"));
    }

    #[test]
    fn half_pixel_shift_is_a_stripe_pattern() {
        // A ramp upsampled 2× by nearest neighbour, and the same shifted by
        // half an output pixel: every other column differs.
        let (h, w): (usize, usize) = (4, 8);
        let reference: Vec<f64> = (0..h * w).map(|i| ((i % w) / 2) as f64).collect();
        let shifted: Vec<f64> = (0..h * w)
            .map(|i| (i % w).div_ceil(2).min(3) as f64)
            .collect();
        let fig = diff_heatmap(
            &tensor(&[1, 1, h, w], &shifted),
            &tensor(&[1, 1, h, w], &reference),
        )
        .unwrap();
        let g = Grid::new(1, 0, h, w);
        let black = inferno(0.0);
        for y in [0, g.tile_h / 2, g.tile_h - 1] {
            for col in 0..w {
                let px = fig.image.pixel(col * g.scale + g.scale / 2, y);
                if col % 2 == 1 && col < w - 1 {
                    assert_eq!(px, inferno(1.0), "column {col} should differ");
                } else {
                    assert_eq!(px, black, "column {col} should agree");
                }
            }
        }
    }

    #[test]
    fn non_finite_and_large_planes() {
        let a = tensor(&[1, 1, 1, 3], &[0.0, f64::NAN, 1.0]);
        let b = tensor(&[1, 1, 1, 3], &[0.0, 0.0, 0.0]);
        let fig = diff_heatmap(&a, &b).unwrap();
        assert_eq!(fig.non_finite, 1);
        assert_eq!(fig.max_diff, 1.0);
        let g = Grid::new(1, 0, 1, 3);
        assert_eq!(fig.image.pixel(g.scale + 1, 0), NON_FINITE);
        // Rank 3 draws 1×L tiles; rank 2 is not spatial.
        assert!(diff_heatmap(
            &tensor(&[1, 2, 4], &[0.0; 8]),
            &tensor(&[1, 2, 4], &[1.0; 8])
        )
        .is_some());
        assert!(diff_heatmap(&tensor(&[2, 4], &[0.0; 8]), &tensor(&[2, 4], &[1.0; 8])).is_none());
        assert!(diff_heatmap(
            &tensor(&[1, 1, 2, 4], &[0.0; 8]),
            &tensor(&[1, 1, 4, 2], &[1.0; 8])
        )
        .is_none());
        // 1030 wide: reduced by 3 (max over blocks), the single bad pixel survives.
        let g = Grid::new(1, 0, 2, 1030);
        assert_eq!((g.step, g.scale, g.tile_w), (3, 1, 344));
        let mut v = vec![0.0; 2060];
        v[1029] = 5.0;
        let fig = diff_heatmap(
            &tensor(&[1, 1, 2, 1030], &v),
            &tensor(&[1, 1, 2, 1030], &[0.0; 2060]),
        )
        .unwrap();
        assert_eq!(fig.image.pixel(343, 0), inferno(1.0));
        assert!(
            side_by_side(&tensor(&[1, 1, 2, 1030], &v), &tensor(&[1, 1, 2, 1030], &v)).is_none()
        );
    }

    #[test]
    fn names_are_sanitized_and_unique() {
        assert_eq!(
            sanitize("resize-nearest:ctm=align_corners,geometry=5to7-resize-ort"),
            "resize-nearest_ctm_align_corners_geometry_5to7-resize-ort"
        );
        assert_eq!(sanitize("a/b c[ä]"), "a_b_c___");
        let mut w = HeatmapWriter::new("/nonexistent");
        assert_eq!(w.stem(&["a", "b"]), "a-b");
        assert_eq!(w.stem(&["a", "b"]), "a-b-2");
        assert!(w.stem(&["x".repeat(300)]).len() <= 200);
    }
}
