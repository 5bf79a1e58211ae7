//! Benchmarks of the hot paths: the fused diff (time per 1 M, and elements
//! per second per lane dtype), and a case run on the float64 reference
//! (`cargo bench -p xdiff --bench diff`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdiff::diff::Tolerance;
use xdiff::tensor::{DType, Tensor};

const TOL: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-4,
};

/// A lane of `dtype` and its float64 reference, `n` elements a rounding apart;
/// every `nan_every`-th element NaN on both sides (agreeing specials).
fn pair(dtype: DType, want_dtype: DType, n: usize, nan_every: Option<usize>) -> (Tensor, Tensor) {
    let special = |i: usize| nan_every.is_some_and(|k| i % k == 0);
    let a: Vec<f64> = (0..n)
        .map(|i| {
            if special(i) {
                f64::NAN
            } else {
                (i as f64 * 0.001).sin() * 100.0
            }
        })
        .collect();
    let b: Vec<f64> = a.iter().map(|x| x + 1e-7).collect();
    (
        Tensor::from_f64(dtype, &[n], &a),
        Tensor::from_f64(want_dtype, &[n], &b),
    )
}

fn diff_1m(c: &mut Criterion) {
    let (got, want) = pair(DType::F32, DType::F64, 1 << 20, None);
    c.bench_function("diff f32 vs f64, 1M elements", |bench| {
        bench.iter(|| xdiff::diff::compare(&got, &want, DType::F32, TOL))
    });
}

/// Elements per second of the fused pass, per lane dtype (single-threaded).
fn diff_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff throughput");
    let runs = [
        ("f32 vs f64, 1M", DType::F32, DType::F64, 1 << 20, None),
        ("f32 vs f64, 16M", DType::F32, DType::F64, 1 << 24, None),
        (
            "f32 vs f64, 1M, NaN every 1000",
            DType::F32,
            DType::F64,
            1 << 20,
            Some(1000),
        ),
        ("int64 vs int64, 1M", DType::I64, DType::I64, 1 << 20, None),
        ("f16 vs f64, 1M", DType::F16, DType::F64, 1 << 20, None),
    ];
    for (name, dtype, want_dtype, n, nan_every) in runs {
        let (got, want) = pair(dtype, want_dtype, n, nan_every);
        g.throughput(Throughput::Elements(n as u64));
        if n > 1 << 20 {
            g.sample_size(10);
        }
        g.bench_function(name, |bench| {
            bench.iter(|| xdiff::diff::compare(&got, &want, dtype, TOL))
        });
    }
    // The local comparison under an accumulating op's bound: an allowance
    // per element, read from float32 magnitudes a block at a time
    // (`diff::PerElement`, as `bound::compare_bounded_to` does).
    let n = 1 << 20;
    let (got, want) = pair(DType::F32, DType::F64, n, None);
    let m: Vec<f32> = want
        .to_f64_vec()
        .iter()
        .map(|r| (r.abs() * 2.0) as f32)
        .collect();
    let rule = |m: f64, r: f64| 3e-7 * m + r.abs() * f64::from(f32::EPSILON) + 1e-44;
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("f32 vs f64, 1M, per-element bound", |bench| {
        bench.iter(|| {
            let allowed = xdiff::diff::PerElement {
                m: &m,
                past: f32::INFINITY,
                rule,
            };
            xdiff::diff::compare_within(&got, &want, DType::F32, allowed)
        })
    });
    g.finish();
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

criterion_group!(benches, diff_1m, diff_throughput, resize_sweep_reference);
criterion_main!(benches);
