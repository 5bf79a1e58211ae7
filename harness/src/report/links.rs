//! What the heatmap writer tells the other reporters: the images it wrote
//! for a case and the run's image budget. Shared here so that the writer
//! (`heatmap`) and the report that links the images (`markdown`) do not
//! depend on each other.

/// PNG files written per run, at most.
pub const MAX_IMAGES: usize = 20;

/// One written heatmap, for the Markdown report.
#[derive(Debug, Clone)]
pub struct HeatmapLink {
    /// `case[variant]`.
    pub case: String,
    pub lane: String,
    pub node: String,
    pub op: String,
    pub output: String,
    pub shape: Vec<usize>,
    /// File names under `heatmaps/`.
    pub file: String,
    pub side_by_side: Option<String>,
    pub max_diff: f64,
    pub grey: Option<(f64, f64)>,
    pub channels_shown: usize,
    pub channels_total: usize,
    pub non_finite: usize,
}
