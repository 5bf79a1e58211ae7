//! Benchmarks of the hot paths: the streaming diff, and a case run on the
//! float64 reference (`cargo bench -p xdiff --bench diff`).

use criterion::{criterion_group, criterion_main, Criterion};
use xdiff::diff::Tolerance;
use xdiff::tensor::{DType, Tensor};

fn diff_1m(c: &mut Criterion) {
    let n = 1 << 20;
    let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.001).sin()).collect();
    let b: Vec<f64> = a.iter().map(|x| x + 1e-7).collect();
    let got = Tensor::from_f64(DType::F32, &[n], &a);
    let want = Tensor::from_f64(DType::F64, &[n], &b);
    let tol = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };
    c.bench_function("diff f32 vs f64, 1M elements", |bench| {
        bench.iter(|| xdiff::diff::compare(&got, &want, DType::F32, tol))
    });
}

fn resize_sweep_reference(c: &mut Criterion) {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../cases/resize.toml"));
    let cases = xdiff::case::load(path).expect("cases/resize.toml loads");
    let backends = vec!["reference".to_string()];
    c.bench_function(
        "cases/resize.toml, every variant, reference only",
        |bench| {
            bench.iter(|| {
                for case in &cases {
                    xdiff::run::run_case(case, &backends).expect("runs");
                }
            })
        },
    );
}

criterion_group!(benches, diff_1m, resize_sweep_reference);
criterion_main!(benches);
