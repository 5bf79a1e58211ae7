//! The float64 reference on a real network (`cargo bench -p xdiff --bench
//! reference`): resnet18 from the exported model corpus
//! (`~/.cache/xdiff/models-*/resnet18`, written by `ci/export-models`), run
//! as a case with the reference as its only lane, so the number is the
//! reference's Conv/MatMul/elementwise speed plus the (single-lane) harness.
//! Without the corpus the bench prints why and measures nothing.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

/// The newest corpus directory holding `resnet18`, if any.
fn resnet18() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let cache = PathBuf::from(home).join(".cache/xdiff");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("models-"))
                && p.join("resnet18/model.onnx").is_file()
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|d| d.join("resnet18"))
        .ok_or_else(|| format!("no {}/models-*/resnet18/model.onnx", cache.display()))
}

fn reference_on_resnet18(c: &mut Criterion) {
    let dir = match resnet18() {
        Ok(d) => d,
        Err(why) => {
            println!("reference on a real network: skipped ({why}; run ci/export-models)");
            return;
        }
    };
    let cases = xdiff::case::load(&dir).expect("resnet18 loads");
    let backends = vec!["reference".to_string()];
    let mut group = c.benchmark_group("reference on a real network");
    group.sample_size(10);
    group.bench_function("resnet18, reference lane only", |bench| {
        bench.iter(|| {
            for case in &cases {
                xdiff::run::run_case(case, &backends).expect("runs");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, reference_on_resnet18);
criterion_main!(benches);
