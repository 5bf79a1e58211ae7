//! Fuzzed loaders (issue 14, item 2): every loader that faces a file a user
//! hands us — the case TOML loader (inline graphs and sweeps included), the
//! ONNX loader with external data, the `.pb`/`.npy` tensor readers and
//! backend-test directories — must answer arbitrary and mutated input with
//! `Ok` or one clear error: never a panic, never an allocation sized by a
//! number the file merely claims.
//!
//! `cargo fuzz` needs nightly, so these are deterministic random tests on the
//! stable toolchain: each target draws a fixed number of inputs (`FUZZ_CASES`,
//! or `PROPTEST_CASES`, overrides the budget) from a ChaCha generator with a
//! fixed seed, so a run is reproducible and a failure names its input. The
//! test binary's global allocator refuses any single allocation above
//! [`ALLOC_CAP`], so an unbounded allocation aborts the run instead of
//! passing unnoticed (with `FUZZ_VERBOSE=1` every input is printed before it
//! runs, to find the one that aborted). Inputs that once found a bug live
//! under `tests/fuzz-corpus/<target>/` and are replayed by
//! `corpus_seeds_load_cleanly`. See `docs/fuzzing.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::WriteNpyExt;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use xdiff::onnx::{self, data_type as dt};

/// The largest single allocation a loader may make here (1 GiB).
const ALLOC_CAP: usize = 1 << 30;

/// The system allocator, refusing allocations over [`ALLOC_CAP`].
struct Capped;

// SAFETY: forwards to `System`, or returns null (an allocation failure) for
// sizes over the cap, which every caller must already handle.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > ALLOC_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > ALLOC_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > ALLOC_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

/// Inputs per target: `FUZZ_CASES` or `PROPTEST_CASES`, else `default`.
fn budget(default: usize) -> usize {
    ["FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .unwrap_or(default)
}

fn verbose() -> bool {
    std::env::var_os("FUZZ_VERBOSE").is_some()
}

/// One loader under test: it gets a scratch folder and the input bytes.
type Loader = fn(&Path, &[u8]) -> Result<(), String>;

/// Runs `load` on `input`; a panic or a malformed error fails the test,
/// naming the target and the input.
fn check(target: &str, dir: &Path, load: Loader, input: &[u8]) {
    if verbose() {
        eprintln!("{target}: {}", String::from_utf8_lossy(input));
    }
    let shown = || {
        format!(
            "{target}: input ({} bytes): {:?}",
            input.len(),
            lossy(input)
        )
    };
    match catch_unwind(AssertUnwindSafe(|| load(dir, input))) {
        Err(_) => panic!("loader panicked; {}", shown()),
        Ok(Err(msg)) => {
            assert!(!msg.trim().is_empty(), "empty error; {}", shown());
            assert!(!msg.contains("panicked"), "{msg}; {}", shown());
        }
        Ok(Ok(())) => {}
    }
}

fn lossy(input: &[u8]) -> String {
    let s = String::from_utf8_lossy(input);
    s.chars().take(2000).collect()
}

/// Runs `budget` inputs drawn by `gen` (seeded with `seed`) through `load`;
/// returns the number run.
fn fuzz(
    target: &str,
    seed: u64,
    n: usize,
    load: Loader,
    mut gen: impl FnMut(&mut ChaCha8Rng) -> Vec<u8>,
) -> usize {
    let dir = scratch();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let input = gen(&mut rng);
        check(target, dir.path(), load, &input);
    }
    eprintln!("fuzz {target}: {n} inputs");
    n
}

/// A scratch folder that sees every entry of `cases/` (symlinked), so a
/// mutated shipped case finds the models and files it names.
fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(cases_dir()).unwrap().flatten() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(e.path(), d.path().join(e.file_name())).unwrap();
    }
    d
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases")
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

// ---------------------------------------------------------------- loaders

fn err(e: impl Display) -> String {
    e.to_string()
}

/// A case error names the file it came from.
fn case_err(file: &Path) -> impl Fn(xdiff::case::CaseError) -> String + '_ {
    move |e| {
        let msg = e.to_string();
        assert!(
            !e.file.is_empty(),
            "a case error names no file: {msg} (loading {})",
            file.display()
        );
        msg
    }
}

/// The case TOML loader on `input` as `fuzz-case.toml`.
fn load_case(dir: &Path, input: &[u8]) -> Result<(), String> {
    let path = dir.join("fuzz-case.toml");
    std::fs::write(&path, input).unwrap();
    xdiff::case::load(&path).map(drop).map_err(case_err(&path))
}

/// The inline-graph builder, directly, on `input` as a `[model.graph]` table.
fn load_inline(_: &Path, input: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(input).map_err(err)?;
    let g: xdiff::case::raw::RawGraph = toml::from_str(text).map_err(err)?;
    xdiff::case::graph_from_inline(Path::new("inline.toml"), &g, 7)
        .map(drop)
        .map_err(err)
}

/// The ONNX loader on `input` as `model.onnx`, next to a 64-byte side file
/// `weights.bin` for external data.
fn load_onnx(dir: &Path, input: &[u8]) -> Result<(), String> {
    let path = dir.join("model.onnx");
    std::fs::write(&path, input).unwrap();
    std::fs::write(dir.join("weights.bin"), [7u8; 64]).unwrap();
    xdiff::graph::Graph::load(&path).map(drop).map_err(err)
}

/// The `.pb` TensorProto reader, directly and through a case's `file = `.
fn load_pb(dir: &Path, input: &[u8]) -> Result<(), String> {
    let direct = onnx::decode_tensor(input)
        .map_err(err)
        .and_then(|p| xdiff::tensor::Tensor::from_proto(&p).map_err(err));
    std::fs::write(dir.join("x.pb"), input).unwrap();
    let through_case = load_case(dir, case_with_file("x.pb").as_bytes());
    direct.and(through_case)
}

/// The `.npy` reader, through a case's `file = `.
fn load_npy(dir: &Path, input: &[u8]) -> Result<(), String> {
    std::fs::write(dir.join("x.npy"), input).unwrap();
    load_case(dir, case_with_file("x.npy").as_bytes())
}

fn case_with_file(file: &str) -> String {
    format!(
        "[model.graph]\ninputs = [{{ name = \"X\", shape = [2, 3] }}]\noutputs = [\"Y\"]\n\
         [[model.graph.nodes]]\nop = \"Relu\"\ninputs = [\"X\"]\noutputs = [\"Y\"]\n\
         [inputs.X]\nfile = \"{file}\"\n"
    )
}

/// A backend-test directory whose `input_0.pb` is `input` (model and
/// expected output valid).
fn load_testdir(dir: &Path, input: &[u8]) -> Result<(), String> {
    let t = dir.join("test_relu");
    let set = t.join("test_data_set_0");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(t.join("model.onnx"), relu_model().encode_to_vec()).unwrap();
    std::fs::write(set.join("input_0.pb"), input).unwrap();
    std::fs::write(
        set.join("output_0.pb"),
        f32_tensor("Y", &[2, 3]).encode_to_vec(),
    )
    .unwrap();
    xdiff::case::load(&t).map(drop).map_err(case_err(&t))
}

/// Every target by its corpus folder name.
const TARGETS: &[(&str, Loader)] = &[
    ("case-toml", load_case),
    ("inline", load_inline),
    ("onnx", load_onnx),
    ("tensor-pb", load_pb),
    ("npy", load_npy),
    ("testdir", load_testdir),
];

// ------------------------------------------------------------- generators

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    -3,
    7,
    255,
    65536,
    i32::MAX as i64,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 53,
    1 << 62,
    i64::MAX,
    i64::MIN,
];

const FLOATS: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    0.5,
    1e20,
];

/// Words of the case schema and of ONNX, so random tables hit real keys.
const WORDS: &[&str] = &[
    "name",
    "model",
    "graph",
    "path",
    "test_dir",
    "inputs",
    "outputs",
    "nodes",
    "op",
    "attrs",
    "shape",
    "dtype",
    "values",
    "file",
    "dist",
    "low",
    "high",
    "seed",
    "opset",
    "initializers",
    "sweep",
    "params",
    "expect",
    "backends",
    "tolerance",
    "options",
    "lane",
    "port",
    "patch",
    "node",
    "value",
    "specials",
    "axis",
    "X",
    "Y",
    "W",
    "Relu",
    "Conv",
    "Resize",
    "Gather",
    "Reshape",
    "Range",
    "Constant",
    "Add",
    "If",
    "Loop",
    "float32",
    "float16",
    "int64",
    "bool",
    "uniform",
    "normal",
    "arange",
    "ramp",
    "constant",
    "reference",
    "ort",
    "tch",
    "candle",
    "${p}",
    "${geometry.input}",
    "mode",
    "device",
    "atol",
    "rtol",
    "x.npy",
    "../../etc/passwd",
    "",
    "kernel_shape",
    "pads",
    "strides",
    "to",
    "perm",
    "reason",
    "declared",
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn random_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let n = rng.random_range(0..200);
    (0..n).map(|_| rng.random()).collect()
}

fn value(rng: &mut ChaCha8Rng, depth: u32) -> toml::Value {
    use toml::Value as V;
    match rng.random_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => V::Integer(*pick(rng, INTS)),
        1 => V::Float(*pick(rng, FLOATS)),
        2 => V::String(pick(rng, WORDS).to_string()),
        3 => V::Boolean(rng.random()),
        4 => V::Integer(rng.random_range(-4..12)),
        5 | 6 => V::Array(
            (0..rng.random_range(0..5))
                .map(|_| value(rng, depth + 1))
                .collect(),
        ),
        _ => V::Table(table(rng, depth + 1)),
    }
}

fn table(rng: &mut ChaCha8Rng, depth: u32) -> toml::Table {
    (0..rng.random_range(0..5))
        .map(|_| (pick(rng, WORDS).to_string(), value(rng, depth)))
        .collect()
}

/// A random TOML document over schema words (a random byte string when the
/// table cannot be written as TOML).
fn random_toml(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let t = table(rng, 0);
    toml::to_string(&t).map_or_else(|_| random_bytes(rng), String::into_bytes)
}

/// The shipped case files, parsed.
fn shipped_cases() -> Vec<toml::Table> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Every path (keys and array indices) to a value inside `t`.
fn value_paths(v: &toml::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    let children: Vec<(String, &toml::Value)> = match v {
        toml::Value::Table(t) => t.iter().map(|(k, v)| (k.clone(), v)).collect(),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (k, c) in children {
        at.push(k);
        value_paths(c, at, out);
        at.pop();
    }
}

fn at_path<'a>(v: &'a mut toml::Value, path: &[String]) -> &'a mut toml::Value {
    path.iter().fold(v, |v, k| match v {
        toml::Value::Table(t) => t.get_mut(k).unwrap(),
        toml::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => unreachable!("paths lead through tables and arrays"),
    })
}

/// One structure-aware mutation of a case: a value replaced (wrong type,
/// huge or negative number, NaN, huge shape), a key renamed or dropped, a
/// value nested deep.
fn mutate_value(rng: &mut ChaCha8Rng, doc: &mut toml::Value) {
    let mut paths = Vec::new();
    value_paths(doc, &mut Vec::new(), &mut paths);
    let path = pick(rng, &paths).clone();
    let target = at_path(doc, &path);
    match rng.random_range(0..8) {
        0 => *target = toml::Value::Integer(*pick(rng, INTS)),
        1 => *target = toml::Value::Float(*pick(rng, FLOATS)),
        2 => {
            let dims = (0..rng.random_range(1..4)).map(|_| toml::Value::Integer(*pick(rng, INTS)));
            *target = toml::Value::Array(dims.collect());
        }
        3 => *target = value(rng, 2),
        4 => {
            let mut v = target.clone();
            for _ in 0..rng.random_range(1..40) {
                v = toml::Value::Array(vec![v]);
            }
            *target = v;
        }
        5 => {
            if let toml::Value::Table(t) = target {
                if let Some(k) = t.keys().nth(rng.random_range(0..t.len().max(1))).cloned() {
                    let v = t.remove(&k).unwrap();
                    if rng.random() {
                        t.insert(pick(rng, WORDS).to_string(), v);
                    }
                }
            }
        }
        6 => {
            if let toml::Value::Array(a) = target {
                let copy = a.clone();
                for _ in 0..rng.random_range(1..4) {
                    a.extend(copy.iter().cloned());
                }
            }
        }
        _ => {
            if let toml::Value::Array(a) = target {
                if !a.is_empty() {
                    a.remove(rng.random_range(0..a.len()));
                }
            }
        }
    }
}

/// A shipped case after one to three mutations.
fn mutated_case(cases: &[toml::Table], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut doc = toml::Value::Table(pick(rng, cases).clone());
    for _ in 0..rng.random_range(1..4) {
        mutate_value(rng, &mut doc);
    }
    match doc {
        toml::Value::Table(t) => {
            toml::to_string(&t).map_or_else(|_| Vec::new(), String::into_bytes)
        }
        _ => Vec::new(),
    }
}

/// Byte-level mutations: bit flips, overwritten bytes (varint-shaped
/// numbers included), truncation, inserted and duplicated spans.
fn mutate_bytes(rng: &mut ChaCha8Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..6) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = rng.random(),
            2 => b.truncate(i),
            3 => {
                let huge: [u8; 6] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
                b.splice(i..i, huge);
            }
            4 => {
                let j = rng.random_range(i..b.len());
                let span = b[i..j].to_vec();
                b.splice(j..j, span);
            }
            _ => b[i] = *pick(rng, &[0x00, 0xff, 0x7f, 0x80]),
        }
    }
    b
}

/// A TOML text edited as text: a number swapped for an interesting one, a
/// line dropped, a bracket added.
fn mutate_text(rng: &mut ChaCha8Rng, text: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(text).into_owned();
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return random_bytes(rng);
    }
    let i = rng.random_range(0..lines.len());
    match rng.random_range(0..4) {
        0 => {
            lines.remove(i);
        }
        1 => lines[i] = format!("{} = {}", pick(rng, WORDS), pick(rng, INTS)),
        2 => lines[i].push_str(&"[".repeat(rng.random_range(1..2000))),
        _ => {
            let digits: String = lines[i]
                .chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect();
            lines[i] = digits;
        }
    }
    lines.join("\n").into_bytes()
}

// ------------------------------------------------------------ ONNX models

fn vi(name: &str, dims: &[i64]) -> onnx::ValueInfoProto {
    use onnx::{dimension, type_proto, Dimension, TensorShapeProto, TypeProto};
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    onnx::ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dt::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> onnx::NodeProto {
    onnx::NodeProto {
        op_type: op.into(),
        name: format!("{op}_0"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(nodes: Vec<onnx::NodeProto>, init: Vec<onnx::TensorProto>) -> onnx::ModelProto {
    onnx::ModelProto {
        ir_version: 8,
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(onnx::GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: init,
            input: vec![vi("X", &[2, 3])],
            output: vec![vi("Y", &[2, 3])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[i64]) -> onnx::TensorProto {
    let n: i64 = dims.iter().product();
    onnx::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt::FLOAT,
        raw_data: (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn relu_model() -> onnx::ModelProto {
    model(vec![node("Relu", &["X"], &["Y"])], Vec::new())
}

fn entry(k: &str, v: &str) -> onnx::StringStringEntryProto {
    onnx::StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    }
}

/// A float initializer `B` of `dims` kept in `weights.bin` at `offset`/`length`.
fn external(dims: &[i64], location: &str, offset: &str, length: &str) -> onnx::TensorProto {
    onnx::TensorProto {
        name: "B".into(),
        dims: dims.to_vec(),
        data_type: dt::FLOAT,
        data_location: 1,
        external_data: vec![
            entry("location", location),
            entry("offset", offset),
            entry("length", length),
        ],
        ..Default::default()
    }
}

/// Small valid models: a Relu, an Add with an initializer, an Add whose
/// initializer lies in external data, a Reshape, an If with subgraphs.
fn seed_models() -> Vec<onnx::ModelProto> {
    let add = |b| model(vec![node("Add", &["X", "B"], &["Y"])], vec![b]);
    let mut reshape = model(
        vec![node("Reshape", &["X", "S"], &["Y"])],
        vec![onnx::TensorProto {
            name: "S".into(),
            dims: vec![2],
            data_type: dt::INT64,
            int64_data: vec![2, 3],
            ..Default::default()
        }],
    );
    reshape.opset_import[0].version = 14;
    let branch = |op: &str| onnx::GraphProto {
        node: vec![node(op, &["X"], &["Z"])],
        output: vec![vi("Z", &[2, 3])],
        ..Default::default()
    };
    let mut iff = node("If", &["C"], &["Y"]);
    for (name, op) in [("then_branch", "Relu"), ("else_branch", "Neg")] {
        iff.attribute.push(onnx::AttributeProto {
            name: name.into(),
            r#type: onnx::attribute_type::GRAPH,
            g: Some(branch(op)),
            ..Default::default()
        });
    }
    let cond = onnx::TensorProto {
        name: "C".into(),
        data_type: dt::BOOL,
        raw_data: vec![1].into(),
        ..Default::default()
    };
    vec![
        relu_model(),
        add(f32_tensor("B", &[2, 3])),
        add(external(&[2, 3], "weights.bin", "8", "24")),
        reshape,
        model(vec![iff], vec![cond]),
    ]
}

/// A field-level mutation of a model: opset, dims, element type, external
/// data entries (missing file, escaping path, offset/length past the end,
/// 2^40 elements).
fn mutate_model(rng: &mut ChaCha8Rng, m: &mut onnx::ModelProto) {
    let g = m.graph.as_mut().unwrap();
    match rng.random_range(0..7) {
        0 => m.opset_import[0].version = *pick(rng, INTS),
        1 => {
            let bad = external(
                &[1 << 40],
                pick::<&str>(
                    rng,
                    &[
                        "weights.bin",
                        "missing.bin",
                        "../weights.bin",
                        "/etc/passwd",
                        "",
                    ],
                ),
                &pick(rng, INTS).to_string(),
                &pick(rng, INTS).to_string(),
            );
            g.initializer.push(bad);
            g.node = vec![node("Add", &["X", "B"], &["Y"])];
        }
        2 => {
            if let Some(t) = g.initializer.first_mut() {
                t.dims = (0..rng.random_range(0..4))
                    .map(|_| *pick(rng, INTS))
                    .collect();
            }
        }
        3 => {
            if let Some(t) = g.initializer.first_mut() {
                t.data_type = rng.random_range(-1..20);
            }
        }
        4 => g.input = vec![vi("X", &[*pick(rng, INTS), *pick(rng, INTS)])],
        5 => {
            if let Some(n) = g.node.first_mut() {
                n.attribute.push(onnx::AttributeProto {
                    name: pick(rng, WORDS).to_string(),
                    r#type: rng.random_range(0..15),
                    i: *pick(rng, INTS),
                    ints: vec![*pick(rng, INTS); rng.random_range(0..4)],
                    ..Default::default()
                });
                n.op_type = pick(rng, WORDS).to_string();
            }
        }
        _ => g.output.push(vi(pick::<&str>(rng, WORDS), &[1])),
    }
}

fn mutated_model(seeds: &[onnx::ModelProto], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut m = pick(rng, seeds).clone();
    if rng.random() {
        mutate_model(rng, &mut m);
    }
    let bytes = m.encode_to_vec();
    if rng.random() {
        mutate_bytes(rng, bytes)
    } else {
        bytes
    }
}

/// Valid `.pb` tensors of every element type, some with claimed sizes.
fn seed_tensors() -> Vec<onnx::TensorProto> {
    let mut out: Vec<onnx::TensorProto> = [dt::FLOAT, dt::DOUBLE, dt::INT64, dt::INT32, dt::UINT8]
        .iter()
        .map(|&d| onnx::TensorProto {
            name: "X".into(),
            dims: vec![2, 3],
            data_type: d,
            raw_data: vec![1; 6 * [0, 4, 1, 1, 0, 0, 4, 8, 0, 0, 0, 8][d as usize]].into(),
            ..Default::default()
        })
        .collect();
    out.push(onnx::TensorProto {
        name: "X".into(),
        dims: vec![2, 3],
        data_type: dt::FLOAT,
        float_data: vec![0.5; 6],
        ..Default::default()
    });
    out
}

fn mutated_tensor(seeds: &[onnx::TensorProto], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut t = pick(rng, seeds).clone();
    match rng.random_range(0..4) {
        0 => {
            t.dims = (0..rng.random_range(0..4))
                .map(|_| *pick(rng, INTS))
                .collect()
        }
        1 => t.data_type = rng.random_range(-1..20),
        2 => t
            .raw_data
            .truncate(rng.random_range(0..t.raw_data.len().max(1))),
        _ => {}
    }
    mutate_bytes(rng, t.encode_to_vec())
}

fn npy_bytes(shape: &[usize]) -> Vec<u8> {
    let n = shape.iter().product();
    let a = ArrayD::from_shape_vec(IxDyn(shape), vec![1.5f32; n]).unwrap();
    let mut out = Vec::new();
    a.write_npy(&mut out).unwrap();
    out
}

/// A `.npy` file: NumPy's magic, version 1.0, the header dict `dict`
/// (padded as NumPy pads it), then `data`.
fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match bytes.windows(from.len()).position(|w| w == from) {
        Some(i) => [&bytes[..i], to, &bytes[i + from.len()..]].concat(),
        None => bytes.to_vec(),
    }
}

/// A `.npy` file with its header dict edited (shape, element type, order,
/// deep nesting, a 32-bit header length past the end) or its bytes mutated.
fn mutated_npy(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let good = npy_bytes(&[2, 3]);
    let dims: Vec<String> = (0..rng.random_range(0..4))
        .map(|_| pick(rng, INTS).unsigned_abs().to_string())
        .collect();
    let shape = format!("({},)", dims.join(", "));
    let descr = *pick(
        rng,
        &[
            "<f4", "<f8", "|u1", "<i8", "|b1", "<c8", ">f4", "<U3", "|O", "<f2",
        ],
    );
    let order = *pick(rng, &["False", "True", "0", "None"]);
    let data = vec![0u8; rng.random_range(0..64)];
    match rng.random_range(0..5) {
        0 => mutate_bytes(rng, good),
        1 => {
            let deep = "(".repeat(rng.random_range(1..3000));
            npy_with_header(
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {deep}}}"),
                &data,
            )
        }
        2 => {
            let mut v2 = replace(&good, b"\x01\x00", b"\x02\x00");
            v2.splice(8..10, [0xff, 0xff, 0xff, 0xff]);
            v2
        }
        _ => npy_with_header(
            &format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}"),
            &data,
        ),
    }
}

// ------------------------------------------------------------------ tests

/// Default inputs per target: the whole file stays well under a minute in
/// release on two cores.
const BUDGET: usize = 1000;

#[test]
fn case_toml_arbitrary_bytes_and_values() {
    let n = budget(BUDGET);
    fuzz("case-toml/bytes", 0x14_01, n, load_case, random_bytes);
    fuzz("case-toml/values", 0x14_02, n, load_case, random_toml);
}

#[test]
fn case_toml_mutated_shipped_cases() {
    let cases = shipped_cases();
    let texts: Vec<Vec<u8>> = std::fs::read_dir(cases_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let n = budget(BUDGET);
    fuzz("case-toml/structure", 0x14_03, n, load_case, |r| {
        mutated_case(&cases, r)
    });
    fuzz("case-toml/text", 0x14_04, n, load_case, |r| {
        let t = pick(r, &texts).clone();
        mutate_text(r, &t)
    });
}

#[test]
fn inline_graph_builder_direct() {
    let graphs: Vec<toml::Table> = shipped_cases()
        .into_iter()
        .filter_map(|c| c.get("model")?.get("graph")?.as_table().cloned())
        .collect();
    fuzz("inline", 0x14_05, budget(BUDGET), load_inline, |r| {
        let mut doc = toml::Value::Table(pick(r, &graphs).clone());
        mutate_value(r, &mut doc);
        toml::to_string(&doc).map_or_else(|_| Vec::new(), String::into_bytes)
    });
}

#[test]
fn onnx_loader_bytes_and_mutated_models() {
    let seeds = seed_models();
    for m in &seeds {
        let dir = scratch();
        load_onnx(dir.path(), &m.encode_to_vec()).expect("every seed model loads");
    }
    let n = budget(BUDGET);
    fuzz("onnx/bytes", 0x14_06, n, load_onnx, random_bytes);
    fuzz("onnx/mutated", 0x14_07, n, load_onnx, |r| {
        mutated_model(&seeds, r)
    });
}

#[test]
fn tensor_readers_pb_and_npy() {
    let seeds = seed_tensors();
    let n = budget(BUDGET);
    fuzz("tensor-pb/bytes", 0x14_08, n, load_pb, random_bytes);
    fuzz("tensor-pb/mutated", 0x14_09, n, load_pb, |r| {
        mutated_tensor(&seeds, r)
    });
    fuzz("npy/bytes", 0x14_0a, n, load_npy, random_bytes);
    fuzz("npy/mutated", 0x14_0b, n, load_npy, mutated_npy);
}

#[test]
fn backend_test_directories() {
    let seeds = seed_tensors();
    fuzz("testdir", 0x14_0c, budget(BUDGET / 2), load_testdir, |r| {
        mutated_tensor(&seeds, r)
    });
}

/// The seeds of the generators load cleanly (so the mutations start from
/// valid input, and a loader that rejects everything fails here).
#[test]
fn unmutated_seeds_load() {
    let dir = scratch();
    let good = npy_bytes(&[2, 3]);
    load_npy(dir.path(), &good).expect("a valid .npy loads");
    let pb = f32_tensor("X", &[2, 3]).encode_to_vec();
    load_pb(dir.path(), &pb).expect("a valid .pb loads");
    load_testdir(dir.path(), &pb).expect("a valid backend-test dir loads");
}

/// A tiny file that claims a 2^40-element tensor is one clear error.
#[test]
fn tiny_files_claiming_huge_tensors_are_one_error() {
    let dir = scratch();
    let pb = onnx::TensorProto {
        dims: vec![1 << 40],
        data_type: dt::FLOAT,
        ..Default::default()
    };
    let e = load_pb(dir.path(), &pb.encode_to_vec()).unwrap_err();
    assert!(e.contains("1099511627776"), "{e}");
    let npy = npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",
        &[0; 4],
    );
    let e = load_npy(dir.path(), &npy).unwrap_err();
    assert!(e.contains("1099511627776"), "{e}");
}

/// Every input that once found a bug, replayed: `tests/fuzz-corpus/<target>/*`.
#[test]
fn corpus_seeds_load_cleanly() {
    let mut replayed = 0;
    for (target, load) in TARGETS {
        let Ok(entries) = std::fs::read_dir(corpus_dir().join(target)) else {
            continue;
        };
        let dir = scratch();
        for e in entries.flatten() {
            check(target, dir.path(), *load, &std::fs::read(e.path()).unwrap());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus seeds");
}
