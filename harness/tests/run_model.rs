//! `xdiff run model.onnx` without a case file, and `xdiff case model.onnx`
//! writing the starter case that reproduces it (issue 12, item 3): symbolic
//! dimensions from `--shape`, inputs from `.npy`/`.npz`/`.pb` files, and
//! every bad flag one line on stderr with exit 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;
use xdiff::case;
use xdiff::case::model_file::{self, ModelSpec};
use xdiff::report::digest;
use xdiff::tensor::Tensor;

mod common;
use common::{write, xdiff};

/// `cases/models/fpn.onnx`: input `image` float32 [N, 3, 32, 32].
fn fpn() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/models/fpn.onnx")
}

/// Runs `xdiff` in `dir`: exit code, stdout, stderr.
fn xdiff_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run xdiff");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The digest of a `--format json` run in `dir`, which must pass.
fn passing_digest(dir: &Path, args: &[&str]) -> String {
    let args = [args, &["--format", "json"]].concat();
    let (code, out, err) = xdiff_in(dir, &args);
    assert_eq!(code, 0, "{args:?}: {err}");
    let doc: Value = serde_json::from_str(&out).expect("json report");
    digest::digest_document(&doc)
}

/// Runs `args` on the reference and expects exit 2 with one stderr line containing every `needle`.
fn expect_bad(args: &[&str], needles: &[&str]) {
    let args = [args, &["--backends", "reference"]].concat();
    let (code, _, err) = xdiff(&args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

/// An image of `shape` as `T`, written to `dir/name` as `.npy`.
fn npy<T: ndarray_npy::WritableElement + Copy>(
    dir: &Path,
    name: &str,
    shape: &[usize],
    v: impl Fn(usize) -> T,
) -> PathBuf {
    let n = shape.iter().product();
    let a = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(v).collect()).unwrap();
    let p = dir.join(name);
    ndarray_npy::write_npy(&p, &a).unwrap();
    p
}

fn pixel(i: usize) -> f32 {
    ((i * 37) % 101) as f32 / 50.0 - 1.0
}

#[test]
fn a_model_file_runs_with_its_symbolic_dimension_set() {
    let (code, out, err) = xdiff(&[
        "run",
        fpn().to_str().unwrap(),
        "--shape",
        "image=2,3,32,32",
        "--backends",
        "ort,reference",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed"), "{out}");
}

#[test]
fn a_symbolic_dimension_left_unset_names_the_input_and_the_dimension() {
    expect_bad(
        &["run", fpn().to_str().unwrap()],
        &[
            "fpn.onnx",
            "input `image`",
            "symbolic dimension `N`",
            "--shape image=1,3,32,32",
        ],
    );
}

#[test]
fn a_shape_for_no_input_or_against_a_fixed_dimension_is_bad_input() {
    let m = fpn();
    let m = m.to_str().unwrap();
    expect_bad(
        &["run", m, "--shape", "img=1,3,32,32"],
        &["--shape img", "no input `img`", "inputs: image"],
    );
    expect_bad(
        &["run", m, "--shape", "image=1,4,32,32"],
        &["--shape image", "dimension 1 is 4", "fixed at 3"],
    );
    expect_bad(
        &["run", m, "--shape", "image=1,3,32"],
        &["--shape image", "rank 3", "[N, 3, 32, 32]"],
    );
    // A malformed flag is clap's usage error: exit 2 naming the flag.
    let (code, _, err) = xdiff(&["run", m, "--shape", "image=1,x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--shape") && err.contains("integers"), "{err}");
}

#[test]
fn a_model_under_another_name_is_told_how_it_runs() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("model.bin");
    std::fs::copy(fpn(), &m).unwrap();
    expect_bad(
        &["run", m.to_str().unwrap()],
        &["model.bin", "not a case file", "ends in .onnx"],
    );
}

#[test]
fn model_flags_need_a_model_file() {
    let d = tempfile::tempdir().unwrap();
    let case = write(d.path(), "c.toml", "[model]\npath = \"m.onnx\"\n");
    expect_bad(
        &["run", case.to_str().unwrap(), "--shape", "x=1"],
        &["--shape", "model files (*.onnx)"],
    );
}

/// The inputs the case of `model` with `spec` is run on (as `xdiff run model.onnx` loads it).
fn model_inputs(model: &Path, spec: &ModelSpec) -> BTreeMap<String, Tensor> {
    let mut cases = model_file::load(model, spec).expect("loads");
    assert_eq!(cases.len(), 1);
    cases.remove(0).inputs
}

#[test]
fn an_input_from_a_npy_file_binds_the_symbolic_dimension_and_is_used() {
    let d = tempfile::tempdir().unwrap();
    let img = npy(d.path(), "img.npy", &[2, 3, 32, 32], pixel);
    let flag = format!("image={}", img.display());
    let m = fpn();
    let args = [
        "run",
        m.to_str().unwrap(),
        "--input",
        &flag,
        "--backends",
        "ort,reference",
    ];
    let digest = passing_digest(d.path(), &args);
    assert!(digest.contains("PASS fpn"), "{digest}");
    let spec = ModelSpec {
        inputs: vec![("image".into(), img.clone())],
        ..ModelSpec::default()
    };
    let want: ArrayD<f32> = ndarray_npy::read_npy(&img).unwrap();
    assert_eq!(model_inputs(&m, &spec)["image"], Tensor::F32(want));
}

#[test]
fn an_input_from_a_npz_file_is_the_array_named_like_the_input() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("inputs.npz");
    let image = ArrayD::from_shape_fn(IxDyn(&[1, 3, 32, 32]), |i| pixel(i[3] + 32 * i[2]));
    let other = ArrayD::<f32>::zeros(IxDyn(&[2]));
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).unwrap());
    w.add_array("other", &other).unwrap();
    w.add_array("image", &image).unwrap();
    w.finish().unwrap();
    let spec = ModelSpec {
        inputs: vec![("image".into(), p)],
        ..ModelSpec::default()
    };
    assert_eq!(model_inputs(&fpn(), &spec)["image"], Tensor::F32(image));
}

#[test]
fn an_input_file_of_the_wrong_dtype_shape_name_or_format_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let m = fpn();
    let m = m.to_str().unwrap();
    let f64s = npy(d.path(), "f64.npy", &[1, 3, 32, 32], |i| pixel(i) as f64);
    let wide = npy(d.path(), "wide.npy", &[1, 4, 32, 32], pixel);
    let ok = npy(d.path(), "ok.npy", &[1, 3, 32, 32], pixel);
    let arg = |p: &Path| format!("image={}", p.display());
    expect_bad(
        &["run", m, "--input", &arg(&f64s)],
        &[
            "--input image=",
            "f64.npy",
            "holds float64",
            "`image` is float32",
        ],
    );
    expect_bad(
        &["run", m, "--input", &arg(&wide)],
        &[
            "--input image=",
            "wide.npy",
            "dimension 1 is 4",
            "fixed at 3",
        ],
    );
    expect_bad(
        &["run", m, "--input", &format!("picture={}", ok.display())],
        &["--input picture", "no input `picture`"],
    );
    expect_bad(
        &["run", m, "--input", &arg(&ok), "--shape", "image=2,3,32,32"],
        &["--input image=", "contradicts --shape image"],
    );
    expect_bad(
        &["run", m, "--input", &arg(&d.path().join("missing.npy"))],
        &["--input image=", "missing.npy"],
    );
    let junk = write(d.path(), "junk.npy", "not numpy");
    expect_bad(
        &["run", m, "--input", &arg(&junk)],
        &["--input image=", "junk.npy", "not a readable .npy"],
    );
}

#[test]
fn an_input_from_a_tensor_proto_file_is_read_as_in_backend_test_directories() {
    let d = tempfile::tempdir().unwrap();
    let image = ArrayD::from_shape_fn(IxDyn(&[3, 3, 32, 32]), |i| pixel(i[3] + i[1]));
    let p = d.path().join("image.pb");
    let proto = Tensor::F32(image.clone()).to_proto("image");
    std::fs::write(&p, prost::Message::encode_to_vec(&proto)).unwrap();
    let spec = ModelSpec {
        inputs: vec![("image".into(), p)],
        ..ModelSpec::default()
    };
    assert_eq!(model_inputs(&fpn(), &spec)["image"], Tensor::F32(image));
}

/// `xdiff case` in `dir` on `model` (relative to `dir`), saved as `dir/case.toml`.
fn starter(dir: &Path, args: &[&str]) -> PathBuf {
    let (code, out, err) = xdiff_in(dir, &[&["case"], args].concat());
    assert_eq!(code, 0, "{err}");
    write(dir, "case.toml", &out)
}

#[test]
fn the_starter_case_reproduces_the_model_run() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("models")).unwrap();
    std::fs::copy(fpn(), d.path().join("models/fpn.onnx")).unwrap();
    let flags = [
        "models/fpn.onnx",
        "--shape",
        "image=1,3,32,32",
        "--seed",
        "7",
    ];
    let case = starter(d.path(), &flags);
    let text = std::fs::read_to_string(&case).unwrap();
    assert!(text.contains("path = \"models/fpn.onnx\""), "{text}");
    assert!(text.contains("seed = 7"), "{text}");
    assert!(text.contains("# [[expect]]"), "{text}");
    let from_model = passing_digest(d.path(), &[&["run"], &flags[..]].concat());
    let from_case = passing_digest(d.path(), &["run", "case.toml"]);
    assert_eq!(from_model, from_case);
    for lane in ["ort", "tch", "candle"] {
        assert!(
            from_model.contains(lane),
            "every backend runs: {from_model}"
        );
    }
    // The digest cannot tell inputs apart; the loaded cases can.
    let from_case = case::load(&case).unwrap().remove(0).inputs;
    let spec = |seed| ModelSpec {
        shapes: vec![("image".into(), vec![1, 3, 32, 32])],
        seed,
        ..ModelSpec::default()
    };
    let model = d.path().join("models/fpn.onnx");
    assert_eq!(model_inputs(&model, &spec(7)), from_case);
    assert_ne!(model_inputs(&model, &spec(8)), from_case);
}

#[test]
fn the_starter_case_keeps_input_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(fpn(), d.path().join("fpn.onnx")).unwrap();
    npy(d.path(), "img.npy", &[2, 3, 32, 32], pixel);
    let flags = ["fpn.onnx", "--input", "image=img.npy"];
    let case = starter(d.path(), &flags);
    let text = std::fs::read_to_string(&case).unwrap();
    assert!(
        text.contains("file = \"img.npy\"") && text.contains("shape = [2, 3, 32, 32]"),
        "{text}"
    );
    let from_case = case::load(&case).unwrap().remove(0).inputs;
    let want: ArrayD<f32> = ndarray_npy::read_npy(d.path().join("img.npy")).unwrap();
    assert_eq!(from_case["image"], Tensor::F32(want));
    let digest = passing_digest(
        d.path(),
        &["run", "case.toml", "--backends", "ort,reference"],
    );
    assert_eq!(
        digest,
        passing_digest(
            d.path(),
            &[&["run"], &flags[..], &["--backends", "ort,reference"]].concat()
        )
    );
}

#[test]
fn the_case_command_checks_its_flags_too() {
    let (code, _, err) = xdiff(&["case", fpn().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("symbolic dimension `N`"), "{err}");
    let (code, _, err) = xdiff(&["case", "no-such.onnx"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such.onnx: no such file"), "{err}");
}
