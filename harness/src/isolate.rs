//! Lane isolation (`xdiff run --isolation lane`, the default): each engine
//! lane runs in a worker process, a re-exec of the xdiff binary with the
//! hidden subcommand [`WORKER_COMMAND`], so that a framework that aborts,
//! segfaults, is OOM-killed or hangs takes down only its worker. The crash
//! becomes the lane's error ("lane crashed: SIGSEGV (signal 11) in node 3
//! `boom` (Relu)") and the run goes on. One worker per lane name serves
//! every case of the run (a crashed one is replaced on the next request), so
//! the frameworks load once, not once per variant. Never a fork: the parent
//! has loaded libtorch and ORT, whose thread pools do not survive one.
//!
//! The protocol (docs/isolation.md) is length-prefixed binary frames over
//! the worker's stdin and a duplicate of its stdout (fd 1 itself is pointed
//! at stderr, so framework prints cannot corrupt it); tensors travel as
//! ONNX `TensorProto`s with raw little-endian data.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::backend::engine::{Bridge, Deployed, NodeRun, NodeStatus, Trace};
use crate::backend::{self, EngineError};
use crate::graph::{Graph, ModelFile, Weights};
use crate::options::{Device, EngineOptions, OptLevel};
use crate::tensor::{DType, Tensor};

/// The hidden subcommand a worker runs as.
pub const WORKER_COMMAND: &str = "__lane-worker";

pub use crate::options::TEST_OPS_ENV;

/// How lanes run in worker processes: the xdiff executable to start (the
/// library cannot assume the current executable is xdiff: tests run from
/// their own binary) and how long one lane may run on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    pub exe: PathBuf,
    pub timeout: Duration,
}

/// A lane worker's limit when the run itself is not isolated (a tch lane
/// run from `xdiff`, which does not link libtorch): `--lane-timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a lane of `backend` runs: `None` in this process, else the worker
/// executable and limit. With `--isolation lane` every engine lane runs in a
/// worker; a tch lane always does where this program does not link libtorch
/// (`backend::torch`), in a worker of `xdiff-tch` (beside `iso.exe`, or
/// beside this executable when the run is not isolated).
pub fn for_backend(
    iso: Option<&Isolation>,
    backend: &str,
) -> Result<Option<Isolation>, EngineError> {
    use crate::backend::torch;
    if !torch::needs_torch(backend) || torch::linked() {
        return Ok(iso.cloned());
    }
    let exe = match iso {
        Some(iso) => torch::exe_beside(&iso.exe),
        None => torch::exe(),
    };
    let exe = exe.ok_or_else(|| EngineError::Missing {
        engine: "tch",
        why: format!(
            "cannot find `{}`, the build of xdiff that links libtorch and runs the tch \
             lane, next to this program (build it: `cargo build --release -p xdiff`; \
             or name it in {})",
            torch::TORCH_EXE,
            torch::TORCH_EXE_ENV
        ),
    })?;
    Ok(Some(Isolation {
        exe,
        timeout: iso.map_or(DEFAULT_TIMEOUT, |i| i.timeout),
    }))
}

/// One lane's run on one case, as the parent asks a worker for it.
pub struct Job<'a> {
    /// The lane's name (`tch`, `candle:port`): one worker per name.
    pub lane: &'a str,
    pub backend: &'a str,
    pub opts: &'a EngineOptions,
    pub graph: &'a Graph,
    pub inputs: &'a BTreeMap<String, Tensor>,
}

/// What a worker reported: the settings that ran (empty when the engine
/// could not be prepared) and the trace or the lane's error; with
/// [`run`]'s `later`, what it still has to send after the trace.
pub struct Reply {
    pub settings: Vec<(String, String)>,
    pub trace: Result<Trace, EngineError>,
    pub pending: Option<Pending>,
}

// Frame tags. Parent to worker:
const RUN: u8 = 1;
const VALUE: u8 = 2;
/// A backend's name: load its framework now, ahead of the first job
/// ([`prewarm`]).
const WARM: u8 = 3;
// Worker to parent:
const SETTINGS: u8 = 10;
const STARTED: u8 = 11;
const ASK: u8 = 12;
const TRACE: u8 = 13;
const FAILED: u8 = 14;
/// One value of the trace to come, sent ahead of it (see [`send_trace`]).
const TRACE_VALUE: u8 = 15;
/// After the trace, the model's outputs as deployed (`Session::deployed`),
/// or a `FAILED` frame.
const DEPLOYED: u8 = 16;
/// A `TRACE` that holds the deployed outputs already (`Session::settled`):
/// no `DEPLOYED` frame follows, and the worker is free for its next job.
const SETTLED_TRACE: u8 = 17;
/// The number of the job (from its `RUN` frame) whose frames follow: the
/// first frame of every answer, so that a job never takes another's.
const JOB: u8 = 18;
// How a job carries its model: serialized, or the file it was read from
// unchanged (the worker reads it itself: no weights through the pipe).
const MODEL_BYTES: u8 = 0;
const MODEL_FILE: u8 = 1;

/// A frame that does not decode (a worker of another version, a bug).
#[derive(Debug, thiserror::Error)]
#[error("lane worker protocol: {0}")]
pub struct WireError(String);

fn wire(why: impl Into<String>) -> WireError {
    WireError(why.into())
}

// ---- timings ---------------------------------------------------------------

/// The environment variable that makes a run print where its wall time went
/// (phase, milliseconds) to stderr: `XDIFF_TIMINGS=1` (docs/performance.md).
pub const TIMINGS_ENV: &str = "XDIFF_TIMINGS";

/// Whether `XDIFF_TIMINGS` is set (read once).
pub fn timings_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(TIMINGS_ENV).is_some_and(|v| !v.is_empty() && v != "0"))
}

/// The isolation phases' time in this process, summed over jobs.
fn spent_table() -> &'static Mutex<Vec<(&'static str, Duration)>> {
    static SPENT: OnceLock<Mutex<Vec<(&'static str, Duration)>>> = OnceLock::new();
    SPENT.get_or_init(Default::default)
}

/// Adds the time since `since` to `phase` (when timings are on).
fn spent(phase: &'static str, since: Instant) {
    add_spent(phase, since.elapsed());
}

/// Adds `d` to `phase` (when timings are on).
fn add_spent(phase: &'static str, d: Duration) {
    if !timings_on() {
        return;
    }
    if let Ok(mut t) = spent_table().lock() {
        match t.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += d,
            None => t.push((phase, d)),
        }
    }
}

/// The isolation phases so far, in first-seen order (for `XDIFF_TIMINGS`).
pub fn timings() -> Vec<(&'static str, Duration)> {
    spent_table().lock().map(|t| t.clone()).unwrap_or_default()
}

// ---- encoding -------------------------------------------------------------

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.u8(1).str(s),
            None => self.u8(0),
        }
    }
    /// A tensor as its ONNX dtype code, dims and raw little-endian data:
    /// one copy into the frame, no protobuf encoding on either side.
    fn tensor(&mut self, t: &Tensor) -> &mut Self {
        self.tensor_head(t).bytes(&tensor_data(t))
    }
    /// A tensor's dtype code and dims: [`Enc::tensor`] up to its data.
    fn tensor_head(&mut self, t: &Tensor) -> &mut Self {
        self.u64(t.dtype().onnx_code() as u64)
            .u64(t.shape().len() as u64);
        for &d in t.shape() {
            self.u64(d as u64);
        }
        self
    }
    /// A model, encoded straight into the frame (no intermediate copy).
    fn model(&mut self, m: &crate::onnx::ModelProto) -> &mut Self {
        let n = prost::Message::encoded_len(m);
        self.u64(n as u64);
        self.0.reserve(n);
        prost::Message::encode_raw(m, &mut self.0);
        self
    }
    /// A model file's path, length and modification time (nanoseconds since
    /// the epoch, 0 when unknown).
    fn model_file(&mut self, f: &ModelFile) -> &mut Self {
        let nanos = f
            .modified
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        self.bytes(f.path.as_os_str().as_encoded_bytes())
            .u64(f.len)
            .u64(nanos)
    }
    fn tensors<'a>(&mut self, m: impl ExactSizeIterator<Item = (&'a String, &'a Tensor)>) {
        self.u64(m.len() as u64);
        for (k, v) in m {
            self.str(k).tensor(v);
        }
    }
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(wire("truncated frame"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn len(&mut self) -> Result<usize, WireError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| wire(format!("length {n} past the frame")))
    }
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.len()?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, WireError> {
        self.read(read_str)
    }
    fn opt_str(&mut self) -> Result<Option<String>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }
    /// The inverse of [`Enc::tensor`] ([`read_tensor`] over the frame's bytes).
    fn tensor(&mut self) -> Result<Tensor, WireError> {
        self.read(read_tensor)
    }
    /// `field` read from the rest of the frame, which it then starts after.
    fn read<T>(
        &mut self,
        field: impl FnOnce(&mut io::Take<&'a [u8]>) -> io::Result<Result<T, WireError>>,
    ) -> Result<T, WireError> {
        let mut r = io::Read::take(self.0, self.0.len() as u64);
        // Every read is checked against the frame's length first: one
        // that still fails found the bytes short.
        let value = field(&mut r).map_err(|_| wire("truncated frame"))?;
        self.0 = r.into_inner();
        value
    }
    fn count(&mut self) -> Result<usize, WireError> {
        // Every entry takes at least one byte: a count past that is corrupt.
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| wire(format!("count {n} past the frame")))
    }
    fn model_file(&mut self) -> Result<ModelFile, WireError> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::OsStr::from_bytes(self.bytes()?).into();
        let len = self.u64()?;
        let nanos = self.u64()?;
        let modified = (nanos != 0).then(|| std::time::UNIX_EPOCH + Duration::from_nanos(nanos));
        // Whether it keeps external data, the worker sees when it reads it.
        Ok(ModelFile {
            path,
            len,
            modified,
            external: false,
        })
    }
    fn tensors<C: FromIterator<(String, Tensor)>>(&mut self) -> Result<C, WireError> {
        let n = self.count()?;
        (0..n).map(|_| Ok((self.str()?, self.tensor()?))).collect()
    }
}

fn write_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    buffer_frame(w, tag, payload)?;
    w.flush()
}

/// A frame into `w`'s buffer, sent with the next flushed one.
fn buffer_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&[tag])?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)
}

/// The next frame, or `None` at the end of the stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let Some((tag, len)) = read_head(r)? else {
        return Ok(None);
    };
    Ok(read_payload(r, len)?.map(|payload| (tag, payload)))
}

/// A frame's tag and payload length, or `None` at the end of the stream.
fn read_head(r: &mut impl Read) -> io::Result<Option<(u8, u64)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
    Ok(Some((head[0], len)))
}

/// A payload of `len` bytes, or `None` where the stream ends first.
fn read_payload(r: &mut impl Read, len: u64) -> io::Result<Option<Vec<u8>>> {
    // Room for the whole frame at once (a corrupt length reserves at most
    // 1 GiB; the read below still stops at the end of the stream).
    let mut payload = Vec::with_capacity(len.min(1 << 30) as usize);
    r.take(len).read_to_end(&mut payload)?;
    Ok((payload.len() as u64 == len).then_some(payload))
}

/// The next frame from a worker, or `None` at the end of the stream; a
/// `TRACE_VALUE` frame is decoded as it is read, its data straight into
/// the tensor's buffer ([`read_trace_value`]): a trace's tens of MB are
/// not first read into frames and then copied out of them.
fn read_incoming(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let Some((tag, len)) = read_head(r)? else {
        return Ok(None);
    };
    if tag != TRACE_VALUE {
        return Ok(read_payload(r, len)?.map(|payload| Frame::Raw(tag, payload)));
    }
    let mut body = r.take(len);
    let value = match read_trace_value(&mut body) {
        Ok(value) => value,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    // What a corrupt value left of its frame, or bytes after a whole one.
    let rest = io::copy(&mut body, &mut io::sink())?;
    if body.limit() > 0 {
        return Ok(None);
    }
    let value = value.and_then(|v| match rest {
        0 => Ok(v),
        _ => Err(wire("bytes after a trace value")),
    });
    Ok(Some(Frame::Value(value)))
}

/// `Ok(Err)` of a field out of `Ok(Ok)`, for the `read_*` functions: a
/// field that does not decode is the frame's error, a failed read the
/// stream's.
macro_rules! field {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

/// A `u64` of the frame `r` is limited to.
fn read_u64<R: Read>(r: &mut io::Take<R>) -> io::Result<Result<u64, WireError>> {
    if r.limit() < 8 {
        return Ok(Err(wire("truncated frame")));
    }
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(Ok(u64::from_le_bytes(b)))
}

/// A length or count (`what`), at most what is left of the frame: every
/// entry takes at least one byte, so a larger one is corrupt.
fn read_len<R: Read>(r: &mut io::Take<R>, what: &str) -> io::Result<Result<usize, WireError>> {
    Ok(read_u64(r)?.and_then(|n| {
        usize::try_from(n)
            .ok()
            .filter(|&n| n as u64 <= r.limit())
            .ok_or_else(|| wire(format!("{what} {n} past the frame")))
    }))
}

/// A string as [`Enc::str`] writes it.
fn read_str<R: Read>(r: &mut io::Take<R>) -> io::Result<Result<String, WireError>> {
    let n = field!(read_len(r, "length"));
    let mut bytes = vec![0u8; n];
    r.read_exact(&mut bytes)?;
    Ok(String::from_utf8(bytes).map_err(|_| wire("string not UTF-8")))
}

/// A tensor as [`Enc::tensor`] writes it: dtype, dims, then its data read
/// straight into the tensor's buffer ([`Tensor::read_le_bytes`]). The one
/// decoder of a tensor on the wire: [`Dec::tensor`] reads its bytes with it.
fn read_tensor<R: Read>(r: &mut io::Take<R>) -> io::Result<Result<Tensor, WireError>> {
    let code = field!(read_u64(r));
    let Some(dtype) = i32::try_from(code).ok().and_then(DType::from_onnx) else {
        return Ok(Err(wire(format!("tensor dtype {code}"))));
    };
    let mut shape = Vec::new();
    for _ in 0..field!(read_len(r, "count")) {
        match usize::try_from(field!(read_u64(r))) {
            Ok(d) => shape.push(d),
            Err(_) => return Ok(Err(wire("tensor dimension"))),
        }
    }
    let len = field!(read_len(r, "length"));
    Ok(Tensor::read_le_bytes("", dtype, &shape, len, r)?.map_err(|e| wire(e.to_string())))
}

/// One of [`send_trace`]'s `TRACE_VALUE` payloads (a string, then a
/// tensor) read from `r`, limited to the frame. `Err` only where reading
/// fails.
fn read_trace_value<R: Read>(
    r: &mut io::Take<R>,
) -> io::Result<Result<(String, Tensor), WireError>> {
    let name = field!(read_str(r));
    Ok(read_tensor(r)?.map(|t| (name, t)))
}

fn encode_opts(e: &mut Enc, o: &EngineOptions) {
    e.str(&o.device.to_string())
        .str(o.ort_optimization.name())
        .u8(match o.tf32 {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        })
        .u64(o.threads as u64)
        .u8(o.port as u8);
}

fn decode_opts(d: &mut Dec) -> Result<EngineOptions, WireError> {
    let device = d.str()?;
    let device = Device::parse(&device).ok_or_else(|| wire(format!("device `{device}`")))?;
    let level = d.str()?;
    let ort_optimization = [
        OptLevel::Disable,
        OptLevel::Basic,
        OptLevel::Extended,
        OptLevel::All,
    ]
    .into_iter()
    .find(|l| l.name() == level)
    .ok_or_else(|| wire(format!("optimization level `{level}`")))?;
    let tf32 = [None, Some(false), Some(true)]
        .get(d.u8()? as usize)
        .copied()
        .ok_or_else(|| wire("tf32"))?;
    Ok(EngineOptions {
        device,
        ort_optimization,
        tf32,
        threads: d.u64()? as usize,
        port: d.u8()? != 0,
    })
}

fn encode_status(e: &mut Enc, s: &NodeStatus) {
    match s {
        NodeStatus::Ran => e.u8(0),
        NodeStatus::Unsupported(m) => e.u8(1).str(m),
        NodeStatus::Error(m) => e.u8(2).str(m),
        NodeStatus::Skipped(m) => e.u8(3).str(m),
    };
}

fn decode_status(d: &mut Dec) -> Result<NodeStatus, WireError> {
    Ok(match d.u8()? {
        0 => NodeStatus::Ran,
        1 => NodeStatus::Unsupported(d.str()?),
        2 => NodeStatus::Error(d.str()?),
        3 => NodeStatus::Skipped(d.str()?),
        t => return Err(wire(format!("node status {t}"))),
    })
}

/// A tensor's elements as little-endian bytes: borrowed where they already
/// are ([`Tensor::le_bytes`]), else `to_proto`'s copy in logical order.
fn tensor_data(t: &Tensor) -> std::borrow::Cow<'_, [u8]> {
    match t.le_bytes() {
        Some(b) => b.into(),
        None => Vec::from(t.to_proto("").raw_data).into(),
    }
}

/// A frame payload in pieces: fields encoded into small buffers, tensor
/// data borrowed from where it lies. A trace (every value of a graph, tens
/// to hundreds of MB) then goes to the pipe without first being copied
/// into one buffer.
#[derive(Default)]
struct Pieces<'a> {
    parts: Vec<std::borrow::Cow<'a, [u8]>>,
    head: Enc,
}

impl<'a> Pieces<'a> {
    /// The buffer the next fields are encoded into.
    fn enc(&mut self) -> &mut Enc {
        &mut self.head
    }
    /// A tensor, as [`Enc::tensor`] writes it, its data borrowed when it can be.
    fn tensor(&mut self, t: &'a Tensor) {
        self.head.tensor_head(t);
        let data = tensor_data(t);
        self.head.u64(data.len() as u64);
        self.parts.push(std::mem::take(&mut self.head.0).into());
        self.parts.push(data);
    }
    fn tensors(&mut self, m: impl ExactSizeIterator<Item = (&'a String, &'a Tensor)>) {
        self.head.u64(m.len() as u64);
        for (k, v) in m {
            self.head.str(k);
            self.tensor(v);
        }
    }
    fn finish(mut self) -> Vec<std::borrow::Cow<'a, [u8]>> {
        self.parts.push(self.head.0.into());
        self.parts
    }
}

/// A [`Trace`] as one frame payload, in pieces (see [`Pieces`]); without
/// its values unless `values` is set.
fn trace_pieces(t: &Trace, values: bool) -> Vec<std::borrow::Cow<'_, [u8]>> {
    let mut p = Pieces::default();
    p.enc().u64(t.nodes.len() as u64);
    for n in &t.nodes {
        encode_status(p.enc(), &n.status);
        p.enc()
            .opt_str(n.lowering.as_deref())
            .opt_str(n.bridged.as_deref());
    }
    match values {
        true => p.tensors(t.values.iter()),
        false => p.tensors(std::iter::empty()),
    }
    p.enc().u64(t.logical.len() as u64);
    for (k, d) in &t.logical {
        p.enc().str(k).str(d.name());
    }
    p.enc().u64(t.wall.as_nanos() as u64);
    p.enc().u64(t.notes.len() as u64);
    for n in &t.notes {
        p.enc().str(n);
    }
    p.tensors(t.bridged.iter());
    p.tensors(t.deployed.iter());
    p.finish()
}

/// A [`Trace`] as one frame payload.
pub fn encode_trace(t: &Trace) -> Vec<u8> {
    trace_pieces(t, true).concat()
}

/// Sends `t`: each value in a `TRACE_VALUE` frame of its own, then the rest
/// in the `TRACE` frame (`SETTLED_TRACE` when `settled`). The parent
/// decodes each value as it arrives, while the next is written, instead of
/// the whole trace (tens of MB on a real network) after the last byte of
/// it; and each frame's buffer is small.
fn send_trace(w: &mut impl Write, t: &Trace, settled: bool) -> io::Result<()> {
    for (name, value) in &t.values {
        let mut p = Pieces::default();
        p.enc().str(name);
        p.tensor(value);
        write_pieces(w, TRACE_VALUE, &p.finish())?;
    }
    let tag = if settled { SETTLED_TRACE } else { TRACE };
    write_pieces(w, tag, &trace_pieces(t, false))
}

/// Writes a frame whose payload is `pieces`, one after the other.
fn write_pieces(
    w: &mut impl Write,
    tag: u8,
    pieces: &[std::borrow::Cow<'_, [u8]>],
) -> io::Result<()> {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    w.write_all(&[tag])?;
    w.write_all(&(len as u64).to_le_bytes())?;
    for p in pieces {
        w.write_all(p)?;
    }
    w.flush()
}

/// The inverse of [`encode_trace`].
pub fn decode_trace(bytes: &[u8]) -> Result<Trace, WireError> {
    let d = &mut Dec(bytes);
    let nodes = (0..d.count()?)
        .map(|_| {
            Ok(NodeRun {
                status: decode_status(d)?,
                lowering: d.opt_str()?,
                bridged: d.opt_str()?,
            })
        })
        .collect::<Result<_, WireError>>()?;
    let values = d.tensors()?;
    let logical = (0..d.count()?)
        .map(|_| {
            let k = d.str()?;
            let n = d.str()?;
            let dt = DType::parse(&n).ok_or_else(|| wire(format!("dtype `{n}`")))?;
            Ok((k, dt))
        })
        .collect::<Result<_, WireError>>()?;
    let wall = Duration::from_nanos(d.u64()?);
    let notes = (0..d.count()?).map(|_| d.str()).collect::<Result<_, _>>()?;
    Ok(Trace {
        nodes,
        values,
        logical,
        wall,
        notes,
        bridged: d.tensors()?,
        deployed: d.tensors()?,
    })
}

/// A `DEPLOYED` frame's payload: whether there are deployed outputs, then
/// them and the notes.
fn encode_deployed(d: Option<&Deployed>) -> Vec<u8> {
    let mut e = Enc::default();
    let Some(d) = d else {
        e.u8(0);
        return e.0;
    };
    e.u8(1).tensors(d.outputs.iter());
    for lines in [&d.effects, &d.log] {
        e.u64(lines.len() as u64);
        for line in lines {
            e.str(line);
        }
    }
    e.0
}

/// The inverse of [`encode_deployed`].
fn decode_deployed(bytes: &[u8]) -> Result<Option<Deployed>, WireError> {
    let d = &mut Dec(bytes);
    if d.u8()? == 0 {
        return Ok(None);
    }
    let outputs = d.tensors()?;
    let mut lines = || (0..d.count()?).map(|_| d.str()).collect::<Result<_, _>>();
    let (effects, log) = (lines()?, lines()?);
    Ok(Some(Deployed {
        outputs,
        effects,
        log,
    }))
}

fn encode_error(e: &EngineError) -> Vec<u8> {
    let mut enc = Enc::default();
    match e {
        EngineError::Missing { why, .. } => enc.u8(0).str(why),
        EngineError::Device { device, why, .. } => enc.u8(1).str(why).str(&device.to_string()),
        EngineError::Failed { why, .. } => enc.u8(2).str(why),
        EngineError::Input { name, why } => enc.u8(3).str(why).str(name),
    };
    enc.0
}

fn decode_error(bytes: &[u8], engine: &'static str) -> Result<EngineError, WireError> {
    let d = &mut Dec(bytes);
    let kind = d.u8()?;
    let why = d.str()?;
    Ok(match kind {
        0 => EngineError::Missing { engine, why },
        1 => {
            let device = d.str()?;
            let device =
                Device::parse(&device).ok_or_else(|| wire(format!("device `{device}`")))?;
            EngineError::Device {
                engine,
                device,
                why,
            }
        }
        2 => EngineError::Failed { engine, why },
        _ => EngineError::Input {
            name: d.str()?,
            why,
        },
    })
}

// ---- the worker ------------------------------------------------------------

/// The worker's ends of the protocol.
struct Pipes {
    input: BufReader<io::Stdin>,
    output: BufWriter<File>,
    /// Frames for the main loop read while waiting for a `VALUE`.
    early: VecDeque<(u8, Vec<u8>)>,
}

impl Pipes {
    /// Stdin, and a duplicate of stdout; fd 1 then points at stderr, so
    /// whatever a framework prints cannot corrupt the frames.
    fn open() -> io::Result<Pipes> {
        // SAFETY: dup/dup2 on the process's own standard descriptors; the
        // duplicate is owned by the File alone.
        let out = unsafe {
            let fd = libc::dup(1);
            if fd < 0 || libc::dup2(2, 1) < 0 {
                return Err(io::Error::last_os_error());
            }
            File::from_raw_fd(fd)
        };
        Ok(Pipes {
            input: BufReader::new(io::stdin()),
            output: BufWriter::new(out),
            early: VecDeque::new(),
        })
    }

    /// The next frame for the main loop: one read early, else from stdin.
    fn next(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        match self.early.pop_front() {
            Some(frame) => Ok(Some(frame)),
            None => read_frame(&mut self.input),
        }
    }

    /// The answer to an `ASK`: the next `VALUE` frame. The parent may have
    /// written the next job's `RUN` frame before it (ahead of its turn,
    /// [`pool`]): such frames are kept, in order, for the main loop.
    fn answer(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match read_frame(&mut self.input)? {
                Some((VALUE, payload)) => return Ok(Some(payload)),
                Some(frame @ (RUN | WARM, _)) => self.early.push_back(frame),
                _ => return Ok(None),
            }
        }
    }
}

/// The worker's bridge: asks the parent for each value, and reports each
/// node as it starts.
struct PipeBridge<'a> {
    pipes: Mutex<&'a mut Pipes>,
}

impl Bridge for PipeBridge<'_> {
    fn value(&self, name: &str) -> Option<(Tensor, String)> {
        let mut p = self.pipes.lock().ok()?;
        write_frame(&mut p.output, ASK, &Enc::default().str(name).0).ok()?;
        let payload = p.answer().ok()??;
        let d = &mut Dec(&payload);
        match d.u8().ok()? {
            1 => Some((d.tensor().ok()?, d.str().ok()?)),
            _ => None,
        }
    }

    fn started(&self, index: usize) {
        if let Ok(mut p) = self.pipes.lock() {
            let _ = write_frame(&mut p.output, STARTED, &(index as u64).to_le_bytes());
        }
    }
}

/// The worker's main loop: one job per `RUN` frame until stdin closes.
pub fn worker_main() -> Result<(), WorkerError> {
    let mut pipes = Pipes::open()?;
    let mut backend = String::new();
    while let Some((tag, payload)) = pipes.next()? {
        match tag {
            RUN => backend = serve(&mut pipes, &payload)?,
            WARM => warm(&payload)?,
            _ => return Err(wire(format!("expected a job, got frame {tag}")).into()),
        }
    }
    print_timings(&backend);
    Ok(())
}

/// What ends a worker (its parent sees the exit status).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("lane worker: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Loads the framework of the backend a `WARM` frame names. A backend
/// that does not exist or cannot load is left for its first job to report.
fn warm(payload: &[u8]) -> Result<(), WorkerError> {
    let t = Instant::now();
    if let Ok(engine) = backend::engine(&Dec(payload).str()?) {
        engine.warm();
    }
    spent("worker: warm", t);
    Ok(())
}

/// Runs one job; the backend it ran.
fn serve(pipes: &mut Pipes, payload: &[u8]) -> Result<String, WorkerError> {
    let t = Instant::now();
    let d = &mut Dec(payload);
    // Goes out with the job's next frame (every job sends at least one).
    buffer_frame(&mut pipes.output, JOB, &d.u64()?.to_le_bytes())?;
    let backend = d.str()?;
    let opts = decode_opts(d)?;
    let engine = backend::engine(&backend);
    let weights = engine.as_ref().map_or(Weights::Tensors, |e| e.weights());
    let graph = match d.u8()? {
        MODEL_FILE => Graph::reload(&d.model_file()?, weights),
        _ => Graph::from_bytes(d.bytes()?),
    };
    let graph = match graph {
        Ok(g) => g,
        Err(e) => {
            let e = EngineError::Failed {
                engine: engine.map_or("xdiff", |e| e.name()),
                why: format!("lane worker: reading the model: {e}"),
            };
            write_frame(&mut pipes.output, FAILED, &encode_error(&e))?;
            return Ok(backend);
        }
    };
    let inputs: BTreeMap<String, Tensor> = d.tensors()?;
    spent("worker: decode job", t);
    let t = Instant::now();
    let prepared = engine.and_then(|e| e.prepare(&graph, &opts));
    spent("worker: prepare", t);
    let mut session = match prepared {
        Ok(s) => s,
        Err(e) => {
            write_frame(&mut pipes.output, FAILED, &encode_error(&e))?;
            return Ok(backend);
        }
    };
    let mut settings = Enc::default();
    let s = session.settings();
    settings.u64(s.len() as u64);
    for (k, v) in &s {
        settings.str(k).str(v);
    }
    write_frame(&mut pipes.output, SETTINGS, &settings.0)?;
    let bridge = PipeBridge {
        pipes: Mutex::new(pipes),
    };
    let t = Instant::now();
    let result = session.run_bridged(&inputs, &bridge);
    spent("worker: run", t);
    let pipes = bridge.pipes.into_inner().map_err(|_| wire("poisoned"))?;
    let t = Instant::now();
    let trace = match result {
        Ok(trace) => trace,
        Err(e) => {
            write_frame(&mut pipes.output, FAILED, &encode_error(&e))?;
            return Ok(backend);
        }
    };
    let settled = session.settled();
    send_trace(&mut pipes.output, &trace, settled)?;
    drop(trace);
    spent("worker: send trace", t);
    if settled {
        return Ok(backend);
    }
    // The parent has the trace (the lanes waiting for its values go on)
    // while the deployed model runs here.
    let t = Instant::now();
    let deployed = session.deployed(&inputs);
    spent("worker: deployed", t);
    match deployed {
        Ok(d) => write_frame(&mut pipes.output, DEPLOYED, &encode_deployed(d.as_ref()))?,
        Err(e) => write_frame(&mut pipes.output, FAILED, &encode_error(&e))?,
    }
    Ok(backend)
}

/// A worker's phases over all its jobs, one line on stderr when it exits
/// (`XDIFF_TIMINGS`; it may come after the parent's own lines).
fn print_timings(backend: &str) {
    if !timings_on() {
        return;
    }
    let phases: Vec<String> = timings()
        .iter()
        .map(|(p, d)| format!("{p} {:.1} ms", d.as_secs_f64() * 1e3))
        .collect();
    let pid = std::process::id();
    eprintln!(
        "xdiff timings: {backend} worker {pid}: {}",
        phases.join(", ")
    );
}

// ---- the parent --------------------------------------------------------------

/// Raises a pipe's buffer from Linux's 64 KiB to 1 MiB (the unprivileged
/// ceiling, `/proc/sys/fs/pipe-max-size`): a trace is tens to hundreds of
/// MB, and with 64 KiB the two processes hand over the CPU every 64 KiB
/// (swin_t's 66 MB trace took 153 ms to send). Best effort: a smaller
/// ceiling only keeps the default.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a descriptor this process owns; it changes only the
    // pipe's capacity.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// A running worker: its stdin and the frames a reader thread takes from it.
struct Worker {
    /// Tells this worker from the ones before it (see [`Waiting::sent_to`]).
    id: u64,
    child: Child,
    stdin: Stdin,
    frames: mpsc::Receiver<Frame>,
}

impl Worker {
    fn spawn(exe: &Path) -> io::Result<Worker> {
        let mut command = Command::new(exe);
        command.envs(torch_env());
        let mut child = command
            .arg(WORKER_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let (tx, frames) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        widen_pipe(&stdout);
        widen_pipe(&stdin);
        let mut out = BufReader::new(stdout);
        std::thread::spawn(move || {
            while let Ok(Some(frame)) = read_incoming(&mut out) {
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        let stdin = Stdin::new(Mutex::new(BufWriter::new(stdin)));
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Worker {
            id: STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            child,
            stdin,
            frames,
        })
    }

    /// Kills the worker and its process group (whatever it started).
    fn kill(&mut self) {
        // SAFETY: signalling the group this worker leads (process_group(0)).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
}

/// The environment a process that will run libtorch starts with, each
/// variable unless the user set it (or, for the wait policy, its
/// alternative): libgomp's wait policy `OMP_WAIT_POLICY=PASSIVE` (or
/// `GOMP_SPINCOUNT`), so that its OpenMP workers sleep between ops instead
/// of spinning on the cores of the other lanes (docs/performance.md); and
/// libtorch's kernel set `ATEN_CPU_CAPABILITY=avx2`, so that a case gives
/// the same report on every x86 machine (docs/runtimes.md: libtorch's
/// AVX-512 and AVX2 kernels differ, e.g. Gelu of +Inf). Both are read
/// once, when the process loads or first dispatches: they must be in the
/// environment it starts with.
pub fn torch_env() -> Vec<(&'static str, &'static str)> {
    let set = |keys: &[&str]| keys.iter().any(|k| std::env::var_os(k).is_some());
    let mut env = Vec::new();
    if !set(&["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]) {
        env.push(("OMP_WAIT_POLICY", "PASSIVE"));
    }
    if !set(&["ATEN_CPU_CAPABILITY"]) {
        env.push(("ATEN_CPU_CAPABILITY", TORCH_CPU_CAPABILITY));
    }
    env
}

/// The libtorch kernel set every tch lane runs (see [`torch_env`]).
pub const TORCH_CPU_CAPABILITY: &str = "avx2";

/// What the reader thread takes from a worker ([`read_incoming`]).
enum Frame {
    /// A frame as read: its tag and payload.
    Raw(u8, Vec<u8>),
    /// A `TRACE_VALUE` frame, decoded as it was read.
    Value(Result<(String, Tensor), WireError>),
}

/// A worker's place in the pool: its executable and lane name.
type Key = (PathBuf, String);

/// A lane's worker in the pool: ready for a job, or out on one.
enum Slot {
    Ready(Worker),
    Out(Out),
}

/// A lane's worker out on a job: the jobs waiting for it in the order they
/// asked, and where to write the next one's `RUN` frame ahead of its turn
/// (the worker's stdin, while it is alive).
struct Out {
    waiting: VecDeque<Waiting>,
    stdin: Option<(u64, Stdin)>,
}

/// A job waiting for a lane's worker: how to hand it over, the job's `RUN`
/// frame, and the worker it was written to ahead of its turn, if any.
struct Waiting {
    handed: mpsc::SyncSender<Handed>,
    job: RunFrame,
    sent_to: Option<u64>,
}

/// A `RUN` frame, shared between the job and the pool that may write it.
type RunFrame = std::sync::Arc<Vec<u8>>;

/// A worker's stdin, shared by the job it runs (its `VALUE` replies) and
/// the pool (the next job's `RUN` frame, written ahead).
type Stdin = std::sync::Arc<Mutex<BufWriter<ChildStdin>>>;

/// The largest `RUN` frame written to a worker ahead of its turn: far below
/// a pipe's capacity, so that writing it never waits for the worker.
const AHEAD_FRAME: usize = 64 << 10;

/// At most this many jobs written to a worker ahead of their turn: enough
/// that a parent slow to pass a worker on (busy judging, on a loaded
/// machine) does not leave it idle, few enough to stay in a pipe.
const AHEAD_JOBS: usize = 4;

impl Out {
    /// Marks the jobs waiting, in order, that are now to be written ahead
    /// to worker `id` (at most [`AHEAD_JOBS`] written ahead, each small,
    /// none after one that is not), and gives their frames.
    fn ahead(&mut self, id: u64) -> Vec<RunFrame> {
        let mut frames = vec![];
        for (i, w) in self.waiting.iter_mut().enumerate() {
            if w.sent_to == Some(id) {
                continue;
            }
            if i >= AHEAD_JOBS || w.job.len() > AHEAD_FRAME {
                break;
            }
            w.sent_to = Some(id);
            frames.push(w.job.clone());
        }
        frames
    }
}

/// What a job that waited for a lane's worker is handed: the worker
/// (`None`: it ended, start one) and the job's `RUN` frame unless it was
/// written to the worker already.
struct Handed {
    worker: Option<Worker>,
    job: Option<RunFrame>,
}

/// Writes a frame to a worker's stdin. A write that fails means the worker
/// is gone: the job talking to it finds it closed and says why.
fn send(stdin: &Stdin, tag: u8, payload: &[u8]) {
    let _ = write_frame(&mut *locked(stdin), tag, payload);
}

/// The workers of this process, one per lane name, kept between cases.
/// Cases may run side by side (`crate::ahead`): a job for a lane whose
/// worker is out on another case's job waits for it ([`Lease::take`]),
/// first come first served, rather than starting a second one, so a
/// framework still loads once. Up to [`AHEAD_JOBS`] jobs next in line have
/// their small `RUN` frames written to the worker ahead of their turn, so
/// that the worker goes on to the next the moment it is done with the job
/// before (a sweep's one-node variants spent more time waiting for their
/// turn to be passed on than running); otherwise the job that gives the
/// worker back writes the next one's. A
/// frame written ahead to a worker that then ends is written again to the
/// worker started for it. This cannot deadlock: a job holds a worker only
/// while it runs and its worker answers, no job waits for one worker while
/// holding another, and the worker reads (and keeps) a frame written ahead
/// while it waits for a `VALUE`.
fn pool() -> &'static Mutex<HashMap<Key, Slot>> {
    static POOL: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    POOL.get_or_init(Default::default)
}

/// A lane's slot in the pool, held out for one job. [`Lease::give_back`]
/// returns the worker for the lane's next job; dropped without it (the
/// worker crashed, timed out or could not start), the next job starts a
/// new worker.
struct Lease {
    key: Key,
    given: bool,
}

impl Lease {
    /// The slot of `key` for the job whose `RUN` frame is `job`, waiting
    /// while earlier jobs have it out.
    ///
    /// Frames reach a worker in the order the jobs are in line: a frame is
    /// written only by whoever took the worker's stdin while holding the
    /// pool's lock (the lock then let go before the write), and a frame
    /// ahead of its turn only when the stdin is free at once.
    fn take(key: Key, job: Vec<u8>) -> (Lease, Handed) {
        let job = RunFrame::new(job);
        let mut slots = pool().lock().unwrap_or_else(|p| p.into_inner());
        let worker = match slots.remove(&key) {
            Some(Slot::Ready(w)) => Some(w),
            None => None,
            Some(Slot::Out(mut out)) => {
                let (tx, rx) = mpsc::sync_channel(1);
                out.waiting.push_back(Waiting {
                    handed: tx,
                    job,
                    sent_to: None,
                });
                // Written ahead, if the stdin is free: this job and any
                // before it that are not yet.
                let stdin = out.stdin.clone();
                let ahead = stdin.as_ref().and_then(|(id, s)| {
                    let w = s.try_lock().ok()?;
                    Some((w, out.ahead(*id)))
                });
                slots.insert(key.clone(), Slot::Out(out));
                drop(slots);
                if let Some((mut w, frames)) = ahead {
                    for frame in frames {
                        // A failed write: the worker is gone (its job says why).
                        let _ = write_frame(&mut *w, RUN, &frame);
                    }
                }
                let lease = Lease { key, given: false };
                // Handed over by the job before ([`Lease::put`]), which
                // cannot end without: a dropped lease hands over `None`.
                let handed = rx.recv().unwrap_or(Handed {
                    worker: None,
                    job: None,
                });
                return (lease, handed);
            }
        };
        let stdin = worker.as_ref().map(|w| (w.id, w.stdin.clone()));
        // The job's own frame goes first (a worker just started is sent it
        // by the job, once started: nothing is written ahead to it before).
        let first = stdin.as_ref().map(|(_, s)| locked(s));
        let out = Out {
            waiting: VecDeque::new(),
            stdin: stdin.clone(),
        };
        slots.insert(key.clone(), Slot::Out(out));
        drop(slots);
        let job = match first {
            Some(mut w) => {
                let t = Instant::now();
                let _ = write_frame(&mut *w, RUN, &job);
                spent("isolate: send job", t);
                None
            }
            None => Some(job),
        };
        (Lease { key, given: false }, Handed { worker, job })
    }

    /// The worker back in the pool, for the lane's next job.
    fn give_back(&mut self, worker: Worker) {
        self.given = true;
        self.put(Some(worker));
    }

    /// Hands `worker` (`None`: it ended) to the first job waiting for it,
    /// with that job written to it (unless it was, ahead) and the job after
    /// it written ahead, else leaves it ready in the slot (or the slot
    /// empty).
    fn put(&self, mut worker: Option<Worker>) {
        loop {
            let mut slots = pool().lock().unwrap_or_else(|p| p.into_inner());
            let turn = match slots.get_mut(&self.key) {
                Some(Slot::Out(out)) => out.waiting.pop_front().map(|next| {
                    out.stdin = worker.as_ref().map(|w| (w.id, w.stdin.clone()));
                    let ahead = worker.as_ref().map_or(vec![], |w| out.ahead(w.id));
                    (next, ahead)
                }),
                _ => None,
            };
            let Some((next, ahead)) = turn else {
                match worker {
                    Some(w) => slots.insert(self.key.clone(), Slot::Ready(w)),
                    None => slots.remove(&self.key),
                };
                return;
            };
            let mut handed = Handed {
                worker,
                job: Some(next.job),
            };
            if let Some(w) = &handed.worker {
                let mut stdin = locked(&w.stdin);
                drop(slots);
                if let Some(job) = handed.job.take().filter(|_| next.sent_to != Some(w.id)) {
                    let _ = write_frame(&mut *stdin, RUN, &job);
                }
                for frame in ahead {
                    let _ = write_frame(&mut *stdin, RUN, &frame);
                }
            } else {
                drop(slots);
            }
            match next.handed.send(handed) {
                Ok(()) => return,
                // That job is gone; its frame went to the worker, whose
                // answer no one would read: the next job starts a new one.
                Err(mpsc::SendError(_)) => worker = None,
            }
        }
    }
}

/// A worker's stdin, locked (a panic elsewhere while it was held leaves
/// it usable: each frame is written whole or the worker is gone).
fn locked(stdin: &Stdin) -> std::sync::MutexGuard<'_, BufWriter<ChildStdin>> {
    stdin.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.given {
            self.put(None);
        }
    }
}

/// How a worker ended a job it did not finish.
enum Ended {
    /// The worker closed its output: it exited or was killed.
    Closed,
    Exited(ExitStatus),
    TimedOut,
    Protocol(String),
}

/// Reaps a worker that did not finish its job (killing what is left of its
/// process group), and says how it ended: a closed worker by its exit status.
fn finish(worker: &mut Worker, ended: Ended) -> Ended {
    if !matches!(ended, Ended::Closed) {
        worker.kill();
    }
    let status = worker.child.wait();
    worker.kill();
    match (ended, status) {
        (Ended::Closed, Ok(status)) => Ended::Exited(status),
        (Ended::Closed, Err(e)) => Ended::Protocol(format!("waiting for the worker: {e}")),
        (other, _) => other,
    }
}

/// Starts the workers of `lanes` (lane names, as in [`Job::lane`], with
/// their backends) that are not running yet, and has each load its
/// backend's framework (a `WARM` frame), without waiting for them: they
/// load while the parent loads and runs other lanes, and [`run`] finds
/// them ready. A worker that cannot start is left to [`run`] to report.
pub fn prewarm<'a>(lanes: impl IntoIterator<Item = (&'a Isolation, &'a str, &'a str)>) {
    let Ok(mut slots) = pool().lock() else {
        return;
    };
    for (iso, lane, backend) in lanes {
        let key = (iso.exe.clone(), lane.to_string());
        if slots.contains_key(&key) {
            continue;
        }
        let t = Instant::now();
        if let Ok(w) = Worker::spawn(&iso.exe) {
            send(&w.stdin, WARM, &Enc::default().str(backend).0);
            slots.insert(key, Slot::Ready(w));
        }
        spent("isolate: spawn worker", t);
    }
}

/// Runs `job` in the lane's worker, answering its bridge requests from
/// `bridge`. A worker that dies, exits or runs past `iso.timeout` gives the
/// lane's error, naming the signal or timeout and the last node started.
/// The worker sends the deployed outputs after the trace
/// (`Session::deployed`): taken into it here, or with `later` left to
/// [`Reply::pending`], so that what waits for the trace need not wait for
/// them.
pub fn run(
    iso: &Isolation,
    job: &Job,
    engine: &'static str,
    bridge: &dyn Bridge,
    later: bool,
) -> Reply {
    let t = Instant::now();
    static JOBS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let number = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let frame = encode_job(job, number);
    spent("isolate: encode job", t);
    let (mut lease, handed) = Lease::take((iso.exe.clone(), job.lane.to_string()), frame);
    let t = Instant::now();
    let spawned = handed.worker.map_or_else(|| Worker::spawn(&iso.exe), Ok);
    spent("isolate: spawn worker", t);
    let mut worker = match spawned {
        Ok(w) => w,
        Err(e) => {
            let why = format!("could not start the lane worker {}: {e}", iso.exe.display());
            return Reply {
                settings: vec![],
                trace: Err(EngineError::Missing { engine, why }),
                pending: None,
            };
        }
    };
    let mut settings = vec![];
    let mut last = None;
    let deadline = Instant::now() + iso.timeout;
    let unsent = handed.job.as_ref().map(|j| j.as_slice());
    let outcome = converse(
        number,
        unsent,
        &mut worker,
        deadline,
        bridge,
        &mut settings,
        &mut last,
    );
    let trace = match outcome {
        Ok(Ok((trace, true))) => {
            lease.give_back(worker);
            return Reply {
                settings,
                trace: Ok(trace),
                pending: None,
            };
        }
        Ok(Ok((trace, false))) => trace,
        Ok(Err(error)) => {
            lease.give_back(worker);
            return Reply {
                settings,
                trace: Err(lane_error(&error, engine)),
                pending: None,
            };
        }
        Err(ended) => {
            let ended = finish(&mut worker, ended);
            let why = crash_message(&ended, iso.timeout, &node_place(job.graph, last));
            return Reply {
                settings,
                trace: Err(EngineError::Failed { engine, why }),
                pending: None,
            };
        }
    };
    let after = AfterTrace {
        worker,
        lease,
        deadline,
        timeout: iso.timeout,
        engine,
    };
    // Deployed outputs already here are taken at once, without a thread.
    let first = match after.worker.frames.try_recv() {
        Ok(frame) => Some(Ok(frame)),
        Err(mpsc::TryRecvError::Disconnected) => Some(Err(Ended::Closed)),
        Err(mpsc::TryRecvError::Empty) if later => {
            return Reply {
                settings,
                trace: Ok(trace),
                pending: Some(Pending::start(after)),
            };
        }
        Err(mpsc::TryRecvError::Empty) => None,
    };
    let trace = after.deployed(first).map(|deployed| {
        let mut trace = trace;
        if let Some(d) = deployed {
            trace.settle(d);
        }
        trace
    });
    Reply {
        settings,
        trace,
        pending: None,
    }
}

/// An `EngineError` frame's error.
fn lane_error(payload: &[u8], engine: &'static str) -> EngineError {
    decode_error(payload, engine).unwrap_or_else(|e| EngineError::Failed {
        engine,
        why: e.to_string(),
    })
}

/// A worker that sent its trace and has still to send the model's outputs
/// as deployed (`Session::deployed`), which it computes after the trace.
struct AfterTrace {
    worker: Worker,
    lease: Lease,
    deadline: Instant,
    timeout: Duration,
    engine: &'static str,
}

impl AfterTrace {
    /// Waits for the deployed outputs (`None`: the trace holds them
    /// already), unless `first` is the frame that brought them, then gives
    /// the worker back; a failure or crash of the worker meanwhile is the
    /// lane's error.
    fn deployed(
        mut self,
        first: Option<Result<Frame, Ended>>,
    ) -> Result<Option<Deployed>, EngineError> {
        let engine = self.engine;
        let wait = self.deadline.saturating_duration_since(Instant::now());
        let frame = first.unwrap_or_else(|| match self.worker.frames.recv_timeout(wait) {
            Ok(frame) => Ok(frame),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Ended::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Ended::Closed),
        });
        let got = frame.and_then(|frame| match frame {
            Frame::Raw(DEPLOYED, payload) => decode_deployed(&payload)
                .map(Ok)
                .map_err(|e| Ended::Protocol(e.to_string())),
            Frame::Raw(FAILED, payload) => Ok(Err(lane_error(&payload, engine))),
            Frame::Raw(t, _) => Err(Ended::Protocol(format!(
                "unknown frame {t} after the trace"
            ))),
            Frame::Value(_) => Err(Ended::Protocol("a trace value after the trace".into())),
        });
        match got {
            Ok(result) => {
                self.lease.give_back(self.worker);
                result
            }
            Err(ended) => {
                let ended = finish(&mut self.worker, ended);
                let place = "after the trace, running the untapped (deployed) model";
                let why = crash_message(&ended, self.timeout, place);
                Err(EngineError::Failed { engine, why })
            }
        }
    }
}

/// The deployed outputs a worker sends after its trace ([`run`]'s `later`),
/// taken by a thread of their own as they come, which then gives the
/// worker back to the pool: the next case's job for the lane need not wait
/// until this case is judged (`crate::ahead`).
pub struct Pending {
    /// In a mutex only so that a lane holding it can be shared while it is
    /// judged.
    settled: Mutex<mpsc::Receiver<Result<Option<Deployed>, EngineError>>>,
    engine: &'static str,
}

impl Pending {
    fn start(after: AfterTrace) -> Pending {
        let engine = after.engine;
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _ = tx.send(after.deployed(None));
        });
        Pending {
            settled: Mutex::new(rx),
            engine,
        }
    }

    /// Waits for the deployed outputs (see [`AfterTrace::deployed`]).
    pub fn settle(self) -> Result<Option<Deployed>, EngineError> {
        let t = Instant::now();
        let rx = self.settled.into_inner().unwrap_or_else(|p| p.into_inner());
        let got = rx.recv().unwrap_or_else(|_| {
            Err(EngineError::Failed {
                engine: self.engine,
                why: "the thread awaiting the deployed outputs ended".into(),
            })
        });
        spent("isolate: until deployed", t);
        got
    }
}

/// `job`'s `RUN` frame, numbered `number`.
fn encode_job(job: &Job, number: u64) -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(number).str(job.backend);
    encode_opts(&mut e, job.opts);
    match &job.graph.file {
        Some(file) => e.u8(MODEL_FILE).model_file(file),
        None => e.u8(MODEL_BYTES).model(&job.graph.model),
    };
    e.tensors(job.inputs.iter());
    e.0
}

/// A job's conversation, its `RUN` frame sent first unless `unsent` is
/// `None` (written already, [`Lease::put`]): `Ok(Ok((trace, settled)))`
/// (settled: no `DEPLOYED` frame follows), `Ok(Err(error frame))`, or how
/// the worker ended before answering.
fn converse(
    number: u64,
    unsent: Option<&[u8]>,
    worker: &mut Worker,
    deadline: Instant,
    bridge: &dyn Bridge,
    settings: &mut Vec<(String, String)>,
    last: &mut Option<usize>,
) -> Result<Result<(Trace, bool), Vec<u8>>, Ended> {
    if let Some(frame) = unsent {
        let t = Instant::now();
        // A write that fails means the worker is gone: its exit status says why.
        send(&worker.stdin, RUN, frame);
        spent("isolate: send job", t);
    }
    let mut t = Instant::now();
    // The trace's values, each decoded as it arrives (see [`send_trace`]).
    let mut values = HashMap::new();
    // Whether the job's `JOB` frame came: every frame before it is another's.
    let mut ours = false;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let frame = match worker.frames.recv_timeout(wait) {
            Ok(f) => f,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(Ended::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Ended::Closed),
        };
        let bad = |e: WireError| Ended::Protocol(e.to_string());
        let (tag, payload) = match frame {
            Frame::Raw(tag, payload) if !ours => {
                whose(tag, &payload, number)?;
                ours = true;
                continue;
            }
            Frame::Raw(tag, payload) => (tag, payload),
            Frame::Value(_) if !ours => return Err(another_job(number, TRACE_VALUE, None)),
            // Decoded by the reader thread as it read it (its time is not
            // this thread's: "decode trace" is the rest of the trace).
            Frame::Value(value) => {
                let (name, value) = value.map_err(bad)?;
                values.insert(name, value);
                continue;
            }
        };
        match tag {
            SETTINGS => {
                spent("isolate: until prepared", t);
                t = Instant::now();
                *settings = decode_settings(&payload).map_err(bad)?
            }
            STARTED => *last = Some(Dec(&payload).u64().map_err(bad)? as usize),
            ASK => {
                let name = Dec(&payload).str().map_err(bad)?;
                let mut reply = Enc::default();
                match bridge.value(&name) {
                    Some((t, from)) => reply.u8(1).tensor(&t).str(&from),
                    None => reply.u8(0),
                };
                send(&worker.stdin, VALUE, &reply.0);
            }
            TRACE | SETTLED_TRACE => {
                spent("isolate: until trace", t);
                let t = Instant::now();
                let mut trace = decode_trace(&payload).map_err(bad)?;
                trace.values.extend(std::mem::take(&mut values));
                spent("isolate: decode trace", t);
                return Ok(Ok((trace, tag == SETTLED_TRACE)));
            }
            FAILED => return Ok(Err(payload)),
            t => return Err(Ended::Protocol(format!("unknown frame {t}"))),
        }
    }
}

/// `Ok` when a frame is job `number`'s `JOB` frame, which comes before
/// the job's other frames; any other frame in its place belongs to another
/// job (a worker that runs jobs out of their order), and ends the worker.
fn whose(tag: u8, payload: &[u8], number: u64) -> Result<(), Ended> {
    let got = (tag == JOB).then(|| Dec(payload).u64().ok()).flatten();
    match got {
        Some(n) if n == number => Ok(()),
        _ => Err(another_job(number, tag, got)),
    }
}

fn another_job(number: u64, tag: u8, got: Option<u64>) -> Ended {
    let whose = got.map_or("of another job".to_string(), |n| format!("of job {n}"));
    Ended::Protocol(format!("job {number} was answered by frame {tag} {whose}"))
}

fn decode_settings(payload: &[u8]) -> Result<Vec<(String, String)>, WireError> {
    let d = &mut Dec(payload);
    (0..d.count()?).map(|_| Ok((d.str()?, d.str()?))).collect()
}

/// Where a worker was in a job: the last node it reported starting.
fn node_place(graph: &Graph, last: Option<usize>) -> String {
    match last.and_then(|i| Some((i, graph.nodes.get(i)?))) {
        Some((i, n)) => format!("in node {i} '{}' ({})", n.name, n.op_type),
        None => "before any node reported starting".to_string(),
    }
}

/// `lane crashed: SIGSEGV (signal 11) in node 3 'boom' (Relu)`, `lane timed
/// out after 2 s in node ...` (`place` from [`node_place`]).
fn crash_message(ended: &Ended, timeout: Duration, place: &str) -> String {
    match ended {
        Ended::TimedOut => format!(
            "lane timed out after {} s (--lane-timeout) {place}",
            timeout.as_secs_f64()
        ),
        Ended::Exited(status) => match (status.signal(), status.code()) {
            (Some(sig), _) => format!("lane crashed: {} (signal {sig}) {place}", signal_name(sig)),
            (None, Some(code)) => {
                format!("lane crashed: the worker exited with status {code} {place}")
            }
            (None, None) => format!("lane crashed {place}"),
        },
        Ended::Protocol(why) => format!("lane crashed: {why} {place}"),
        Ended::Closed => format!("lane crashed: the worker closed its output {place}"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_survive_the_wire() {
        let mut t = Trace::default();
        t.nodes.push(NodeRun {
            status: NodeStatus::Error("boom".into()),
            lowering: Some("native: relu".into()),
            bridged: None,
        });
        t.nodes.push(NodeRun {
            status: NodeStatus::Ran,
            lowering: None,
            bridged: Some("ort".into()),
        });
        let x = Tensor::from_f64(DType::F32, &[2, 2], &[1.0, -2.0, 3.5, f64::NAN]);
        t.values.insert("y".into(), x.clone());
        t.logical.insert("y".into(), DType::F16);
        t.bridged.insert("b".into(), x.cast(DType::F64));
        t.deployed.insert("d".into(), x.clone());
        t.notes.push("a note".into());
        t.wall = Duration::from_micros(1234);
        let back = decode_trace(&encode_trace(&t)).unwrap();
        assert_eq!(back.nodes, t.nodes);
        assert_eq!(back.values["y"].to_f64_vec()[..3], [1.0, -2.0, 3.5]);
        assert!(back.values["y"].to_f64_vec()[3].is_nan());
        assert_eq!(back.values["y"].dtype(), DType::F32);
        assert_eq!(back.logical, t.logical);
        assert_eq!(back.bridged["b"].dtype(), DType::F64);
        assert_eq!(back.deployed["d"].shape(), &[2, 2]);
        assert_eq!((back.notes, back.wall), (t.notes, t.wall));
    }

    #[test]
    fn every_dtype_and_shape_survives_the_wire() {
        let values = [1.0, 0.0, -3.0, 2.0, 1.0, 0.0];
        for dtype in DType::ALL {
            for shape in [&[2, 3][..], &[6], &[], &[0, 4]] {
                let n = shape.iter().product::<usize>();
                let t = Tensor::from_f64(dtype, shape, &values[..n]);
                let mut e = Enc::default();
                e.tensor(&t);
                let mut d = Dec(&e.0);
                assert_eq!(d.tensor().unwrap(), t, "{dtype} {shape:?}");
                assert!(d.0.is_empty());
            }
        }
        // A column-major array has no row-major bytes to borrow: it goes
        // through `to_proto`, in logical order.
        use ndarray::ShapeBuilder;
        let v = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let t =
            Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]).f(), v).unwrap());
        assert!(t.le_bytes().is_none());
        let mut e = Enc::default();
        e.tensor(&t);
        assert_eq!(Dec(&e.0).tensor().unwrap(), t);
    }

    #[test]
    fn a_trace_is_sent_value_by_value_then_the_rest() {
        let mut t = Trace::default();
        t.nodes.push(NodeRun {
            status: NodeStatus::Ran,
            lowering: None,
            bridged: None,
        });
        let x = Tensor::from_f64(DType::F32, &[2, 2], &[1.0, -2.0, 3.5, 4.0]);
        t.values.insert("a".into(), x.clone());
        t.values.insert("b".into(), x.cast(DType::I64));
        t.deployed.insert("d".into(), x.clone());
        for (settled, last) in [(false, TRACE), (true, SETTLED_TRACE)] {
            let mut wire = Vec::new();
            send_trace(&mut wire, &t, settled).unwrap();
            let mut r = &wire[..];
            let mut values = HashMap::new();
            let mut tags = vec![];
            while let Some(frame) = read_incoming(&mut r).unwrap() {
                match frame {
                    Frame::Value(value) => {
                        tags.push(TRACE_VALUE);
                        let (k, v) = value.unwrap();
                        values.insert(k, v);
                    }
                    Frame::Raw(tag, payload) => {
                        tags.push(tag);
                        let rest = decode_trace(&payload).unwrap();
                        assert!(rest.values.is_empty(), "the values went ahead");
                        assert_eq!(rest.nodes, t.nodes);
                        assert_eq!(rest.deployed, t.deployed);
                    }
                }
            }
            assert_eq!(tags, [TRACE_VALUE, TRACE_VALUE, last]);
            assert_eq!(values, t.values);
        }
    }

    /// What [`read_incoming`] makes of one `TRACE_VALUE` frame around `payload`.
    fn value_framed(payload: &[u8]) -> Option<Result<(String, Tensor), WireError>> {
        let mut wire = Vec::new();
        write_frame(&mut wire, TRACE_VALUE, payload).unwrap();
        match read_incoming(&mut &wire[..]).unwrap()? {
            Frame::Value(v) => Some(v),
            Frame::Raw(..) => panic!("a trace value comes back decoded"),
        }
    }

    #[test]
    fn a_trace_value_is_read_into_its_tensor_and_a_corrupt_one_refused() {
        for x in [
            Tensor::from_f64(DType::F32, &[2, 3], &[1.0, -2.0, 3.5, 4.0, 0.0, -0.0]),
            Tensor::from_f64(DType::F16, &[3], &[1.0, -2.0, 65504.0]),
            Tensor::from_f64(DType::BF16, &[1, 1], &[3.0]),
            Tensor::from_f64(DType::F64, &[0, 4], &[]),
            Tensor::from_f64(DType::I64, &[2], &[-7.0, 1e12]),
            Tensor::from_f64(DType::U8, &[], &[200.0]),
            Tensor::from_f64(DType::Bool, &[3], &[1.0, 0.0, 1.0]),
        ] {
            let mut p = Pieces::default();
            p.enc().str("x");
            p.tensor(&x);
            let payload = p.finish().concat();
            let (name, back) = value_framed(&payload).expect("whole").unwrap();
            assert_eq!(name, "x");
            assert!(back.same_bits(&x), "{x:?} came back as {back:?}");
            // Cut short inside its own frame, or followed by a byte: refused.
            for cut in 0..payload.len() {
                let v = value_framed(&payload[..cut]).expect("a whole frame");
                assert!(v.is_err(), "cut at {cut}");
            }
            let mut longer = payload.clone();
            longer.push(0);
            let err = value_framed(&longer).expect("a whole frame").unwrap_err();
            assert!(err.to_string().contains("bytes after"), "{err}");
            // The stream ending inside the frame ends the stream.
            let mut wire = Vec::new();
            write_frame(&mut wire, TRACE_VALUE, &payload).unwrap();
            for cut in 9..wire.len() {
                assert!(
                    read_incoming(&mut &wire[..cut]).unwrap().is_none(),
                    "cut at {cut}"
                );
            }
        }
        // A dtype or a length the frame cannot hold is refused, not allocated.
        let mut e = Enc::default();
        e.str("x").u64(1).u64(1).u64(1 << 40).u64(1 << 42);
        let err = value_framed(&e.0).expect("a whole frame").unwrap_err();
        assert!(err.to_string().contains("past the frame"), "{err}");
        let mut e = Enc::default();
        e.str("x").u64(99);
        let err = value_framed(&e.0).expect("a whole frame").unwrap_err();
        assert!(err.to_string().contains("dtype 99"), "{err}");
    }

    /// A job takes only the frames after its own `JOB` frame: a worker that
    /// answers another job first ends, named, instead of lending that
    /// job's trace.
    #[test]
    fn a_job_takes_only_its_own_answer() {
        assert!(whose(JOB, &7u64.to_le_bytes(), 7).is_ok());
        for (tag, payload) in [(JOB, 8u64.to_le_bytes().to_vec()), (SETTINGS, vec![0; 8])] {
            match whose(tag, &payload, 7) {
                Err(Ended::Protocol(why)) => {
                    assert!(why.starts_with("job 7 was answered"), "{why}")
                }
                _ => panic!("frame {tag} taken as job 7's"),
            }
        }
        assert!(whose(JOB, &[1, 2], 7).is_err(), "a cut number");
        // The worker's side: the number it was given goes first, ahead of
        // the job's next frame.
        let mut out = Vec::new();
        buffer_frame(&mut out, JOB, &7u64.to_le_bytes()).unwrap();
        let (tag, payload) = read_frame(&mut &out[..]).unwrap().unwrap();
        assert!(whose(tag, &payload, 7).is_ok());
    }

    #[test]
    fn a_corrupt_frame_is_an_error_not_a_panic() {
        let t = encode_trace(&Trace::default());
        for cut in 0..t.len() {
            assert!(decode_trace(&t[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = Enc::default();
        huge.u64(1 << 40);
        assert!(decode_trace(&huge.0).is_err());
    }

    #[test]
    fn deployed_outputs_survive_the_wire() {
        assert!(decode_deployed(&encode_deployed(None)).unwrap().is_none());
        let y = Tensor::from_f64(DType::F32, &[2], &[1.5, -0.0]);
        let d = Deployed {
            outputs: HashMap::from([("y".to_string(), y.clone())]),
            effects: vec!["tapping changed final output `y`".into()],
            log: vec!["a warning".into(), "another".into()],
        };
        let bytes = encode_deployed(Some(&d));
        let back = decode_deployed(&bytes).unwrap().expect("deployed");
        assert!(back.outputs["y"].same_bits(&y));
        assert_eq!((back.effects, back.log), (d.effects, d.log));
        for cut in 0..bytes.len() {
            assert!(decode_deployed(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn options_survive_the_wire() {
        let o = EngineOptions {
            device: Device::Cuda(1),
            ort_optimization: OptLevel::Basic,
            tf32: Some(false),
            threads: 3,
            port: true,
        };
        let mut e = Enc::default();
        encode_opts(&mut e, &o);
        let back = decode_opts(&mut Dec(&e.0)).unwrap();
        assert_eq!(
            (
                back.device,
                back.ort_optimization,
                back.tf32,
                back.threads,
                back.port
            ),
            (o.device, o.ort_optimization, o.tf32, o.threads, o.port)
        );
    }
}
