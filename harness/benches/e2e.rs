//! End-to-end benchmarks: a whole `xdiff run` minus the reporters, i.e.
//! every lane, the comparison and the verdict (`cargo bench -p xdiff --bench
//! e2e`). Group "end-to-end": `cases/resize.toml` (every variant, all four
//! lanes) and a real network from the model corpus (`ci/models`; swin_t by
//! default, or the backend-test directory in `XDIFF_BENCH_MODEL`), skipped
//! with a printed reason when the corpus is absent. How to read the numbers:
//! docs/performance.md.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use xdiff::case::Case;

const LANES: [&str; 4] = ["ort", "reference", "tch", "candle"];

/// Runs every case on the four lanes, as `xdiff run` does.
fn run_all(cases: &[Case]) {
    let backends: Vec<String> = LANES.iter().map(|s| s.to_string()).collect();
    for case in cases {
        xdiff::run::run_case(case, &backends).expect("runs");
    }
}

/// The model directory to run: `XDIFF_BENCH_MODEL`, else swin_t in the
/// newest model corpus under `~/.cache/xdiff`; why not, when there is none.
fn model_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("XDIFF_BENCH_MODEL") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let cache = Path::new(&home).join(".cache/xdiff");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("swin_t")))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "no swin_t under {}/models-*: run `ci/models export swin_t`, or set XDIFF_BENCH_MODEL",
            cache.display()
        )
    })
}

fn resize_four_lanes(c: &mut Criterion) {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../cases/resize.toml"));
    let cases = xdiff::case::load(path).expect("cases/resize.toml loads");
    let mut g = c.benchmark_group("end-to-end");
    g.sample_size(10);
    g.bench_function("cases/resize.toml, every variant, 4 lanes", |b| {
        b.iter(|| run_all(&cases))
    });
    g.finish();
}

fn real_model_four_lanes(c: &mut Criterion) {
    let dir = match model_dir() {
        Ok(dir) => dir,
        Err(why) => {
            println!("end-to-end/real model: skipped: {why}");
            return;
        }
    };
    let cases = match xdiff::case::load(&dir) {
        Ok(cases) => cases,
        Err(e) => {
            println!("end-to-end/real model: skipped: {}: {e}", dir.display());
            return;
        }
    };
    let name = dir
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy());
    let mut g = c.benchmark_group("end-to-end");
    g.sample_size(10);
    g.bench_function(format!("{name}, 4 lanes"), |b| b.iter(|| run_all(&cases)));
    g.finish();
}

criterion_group!(benches, resize_four_lanes, real_model_four_lanes);
criterion_main!(benches);
