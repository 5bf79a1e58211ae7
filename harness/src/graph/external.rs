//! ONNX external data: tensors whose bytes live in side files next to the
//! model (`data_location = EXTERNAL`, `external_data` entries `location`,
//! `offset`, `length`), as torch's exporter writes `model.onnx.data`.
//!
//! Loading maps each side file once and makes each tensor's `raw_data` a
//! slice of the mapping, so the model becomes self-contained without a copy:
//! every backend decodes initializers as usual (the one copy is into the
//! tensor), and the bytes a runtime is given are the same as for a
//! single-file model. A location that leaves the model's folder, a missing
//! file or one shorter than declared is one error naming the tensor and the
//! file.
//!
//! A mapped file must not be rewritten while xdiff runs (ONNX Runtime maps
//! it the same way); a model file changed since it was loaded is refused
//! where it is read again ([`crate::graph::ModelFile::unchanged`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::onnx::{self, ModelProto, TensorProto};

/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// Why one tensor's external data cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("tensor `{tensor}`: external data `{file}`: {what}")]
pub struct ExternalError {
    pub tensor: String,
    /// The `location` as the model gives it.
    pub file: String,
    pub what: String,
}

/// Whether any tensor of the model (initializers and tensor attributes, in
/// subgraphs too) stores its data externally.
pub(super) fn any(model: &ModelProto) -> bool {
    let mut found = false;
    if let Some(g) = &model.graph {
        visit_graph(g, &mut |t| found |= is_external(t));
    }
    found
}

/// Reads every external tensor of `model` from its side file under `dir` (the
/// model's folder) into `raw_data`; the side files' mappings are returned.
pub(super) fn inline(model: &mut ModelProto, dir: &Path) -> Result<Mappings, ExternalError> {
    let Some(g) = model.graph.as_mut() else {
        return Ok(Mappings::default());
    };
    let mut files = SideFiles {
        dir,
        open: HashMap::new(),
    };
    let mut first_error = None;
    visit_graph_mut(g, &mut |t| {
        if first_error.is_none() && is_external(t) {
            if let Err(e) = files.load(t) {
                first_error = Some(e);
            }
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(Mappings(files.open.into_values().collect())),
    }
}

/// The side files' mappings, each whole: what tells a tensor whose bytes
/// are file pages (which can be handed back once read, [`Mappings::release`])
/// from one whose bytes are the model file's buffer, on the heap.
#[derive(Default, Clone)]
pub struct Mappings(Vec<Bytes>);

impl Mappings {
    /// Whether `bytes` lie wholly inside one of the mappings.
    fn contains(&self, bytes: &[u8]) -> bool {
        let (at, len) = (bytes.as_ptr() as usize, bytes.len());
        self.0.iter().any(|m| {
            let start = m.as_ptr() as usize;
            at >= start && at + len <= start + m.len()
        })
    }

    /// Hands the whole pages of `bytes` back to the page cache when they lie
    /// in a mapping (nothing otherwise), so that a weight read once (converted
    /// into a tensor or a float64 upload) is not also held as the process's
    /// resident file pages for the rest of the run. A later read maps the
    /// same bytes in again from the file. Linux only (elsewhere a no-op).
    pub fn release(&self, bytes: &[u8]) {
        if bytes.is_empty() || !self.contains(bytes) {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
            let start = (bytes.as_ptr() as usize).next_multiple_of(page);
            let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
            if end > start {
                // SAFETY: [start, end) is whole pages inside a live mapping
                // (`contains`; `self` owns it), which `map` made read-only and
                // shared (memmap2's `Mmap::map`). MADV_DONTNEED on a shared
                // file mapping only drops this process's page-table entries:
                // the next read faults the file's unchanged bytes in again,
                // so no reader, concurrent or later, can see other data.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                };
            }
        }
    }
}

/// Tensors smaller than this stay inline when a model is externalized (onnx's
/// `convert_model_to_external_data` default).
const EXTERNALIZE_FROM: usize = 1024;

/// Side-file offsets are aligned to this, so a runtime can map them.
const ALIGN: u64 = 4096;

/// The inverse of [`inline`]: moves the bytes of every tensor of at least
/// 1 KiB into one side file `location` under `dir`, as ONNX external data,
/// so the serialized model stays small (a runtime can then load a model
/// past protobuf's 2 GiB limit from a file).
pub fn externalize(model: &mut ModelProto, dir: &Path, location: &str) -> std::io::Result<()> {
    let Some(g) = model.graph.as_mut() else {
        return Ok(());
    };
    let mut file = std::io::BufWriter::new(File::create(dir.join(location))?);
    let mut offset = 0u64;
    let mut result = Ok(());
    visit_graph_mut(g, &mut |t| {
        if result.is_err() || t.raw_data.len() < EXTERNALIZE_FROM {
            return;
        }
        let pad = offset.next_multiple_of(ALIGN) - offset;
        let len = t.raw_data.len() as u64;
        result = std::io::Write::write_all(&mut file, &vec![0u8; pad as usize])
            .and_then(|_| std::io::Write::write_all(&mut file, &t.raw_data));
        offset += pad;
        let entry = |key: &str, value: String| onnx::StringStringEntryProto {
            key: key.into(),
            value,
        };
        t.external_data = vec![
            entry("location", location.into()),
            entry("offset", offset.to_string()),
            entry("length", len.to_string()),
        ];
        t.data_location = EXTERNAL;
        t.raw_data = Bytes::new();
        offset += len;
    });
    result?;
    std::io::Write::flush(&mut file)
}

fn is_external(t: &TensorProto) -> bool {
    t.data_location == EXTERNAL
}

/// The side files mapped so far, by location (each mapped once).
struct SideFiles<'a> {
    dir: &'a Path,
    open: HashMap<String, Bytes>,
}

/// One tensor's `external_data` entries, parsed.
struct Slice {
    location: String,
    offset: u64,
    length: Option<u64>,
}

impl SideFiles<'_> {
    fn load(&mut self, t: &mut TensorProto) -> Result<(), ExternalError> {
        let s = slice(t)?;
        let err = |what: String| ExternalError {
            tensor: t.name.clone(),
            file: s.location.clone(),
            what,
        };
        let path = inside(self.dir, &s.location).map_err(err)?;
        let whole = match self.open.entry(s.location.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(map(&path).map_err(err)?),
        };
        let size = whole.len() as u64;
        let length = s.length.unwrap_or(size.saturating_sub(s.offset));
        let end = s.offset.saturating_add(length);
        if end > size {
            return Err(err(format!(
                "{} is {size} bytes, shorter than offset {} + length {length}",
                path.display(),
                s.offset
            )));
        }
        t.raw_data = whole.slice(s.offset as usize..end as usize);
        t.external_data.clear();
        t.data_location = 0;
        Ok(())
    }
}

/// The side file at `path`, mapped read-only and shared (an empty file is
/// not mapped).
fn map(path: &Path) -> Result<Bytes, String> {
    let f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only; the file must not be truncated or
    // rewritten while the model is loaded, the condition under which ONNX
    // Runtime maps the same files.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Bytes::from_owner(map))
}

fn slice(t: &TensorProto) -> Result<Slice, ExternalError> {
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = entry("location").unwrap_or_default().to_string();
    let err = |what: String| ExternalError {
        tensor: t.name.clone(),
        file: location.clone(),
        what,
    };
    if location.is_empty() {
        return Err(err("no `location` entry".into()));
    }
    let number = |key: &str| -> Result<Option<u64>, ExternalError> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| err(format!("`{key}` is `{v}`, not a byte count")))
            })
            .transpose()
    };
    Ok(Slice {
        offset: number("offset")?.unwrap_or(0),
        length: number("length")?,
        location,
    })
}

/// `location` resolved under `dir`; only plain relative paths that stay
/// inside the model's folder are accepted.
fn inside(dir: &Path, location: &str) -> Result<PathBuf, String> {
    let rel = Path::new(location);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err("the location leaves the model's folder (absolute or `..`); side files must lie in or under the folder of the model".into());
    }
    Ok(dir.join(rel))
}

fn visit_graph(g: &onnx::GraphProto, f: &mut dyn FnMut(&TensorProto)) {
    g.initializer.iter().for_each(&mut *f);
    for a in g.node.iter().flat_map(|n| &n.attribute) {
        a.t.iter().chain(&a.tensors).for_each(&mut *f);
        a.g.iter()
            .chain(&a.graphs)
            .for_each(|sub| visit_graph(sub, f));
    }
}

fn visit_graph_mut(g: &mut onnx::GraphProto, f: &mut dyn FnMut(&mut TensorProto)) {
    g.initializer.iter_mut().for_each(&mut *f);
    for a in g.node.iter_mut().flat_map(|n| &mut n.attribute) {
        a.t.iter_mut().chain(&mut a.tensors).for_each(&mut *f);
        a.g.iter_mut()
            .chain(&mut a.graphs)
            .for_each(|sub| visit_graph_mut(sub, f));
    }
}

#[cfg(test)]
pub(in crate::graph) mod tests {
    use super::*;

    #[test]
    fn externalized_tensors_read_back_as_they_were() {
        let big = TensorProto {
            name: "w".into(),
            raw_data: (0..5000u32).map(|i| i as u8).collect(),
            ..Default::default()
        };
        let small = TensorProto {
            name: "b".into(),
            raw_data: vec![1, 2, 3, 4].into(),
            ..Default::default()
        };
        let mut model = ModelProto {
            graph: Some(onnx::GraphProto {
                initializer: vec![big.clone(), small.clone(), big.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        externalize(&mut model, dir.path(), "weights.bin").unwrap();
        let g = model.graph.as_ref().unwrap();
        assert!(is_external(&g.initializer[0]) && is_external(&g.initializer[2]));
        assert_eq!(g.initializer[1], small, "a small tensor stays inline");
        let offsets: Vec<&str> = g.initializer[2]
            .external_data
            .iter()
            .map(|e| e.value.as_str())
            .collect();
        assert_eq!(
            offsets,
            ["weights.bin", "8192", "5000"],
            "offsets are page-aligned"
        );
        inline(&mut model, dir.path()).unwrap();
        assert_eq!(
            model.graph.unwrap().initializer,
            vec![big.clone(), small, big]
        );
    }

    /// This process's resident bytes in the mapping that holds `at`
    /// (`Rss` of its entry in `/proc/self/smaps`).
    #[cfg(target_os = "linux")]
    pub(in crate::graph) fn resident(at: &[u8]) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let p = at.as_ptr() as usize;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_once(' ').and_then(|(r, _)| r.split_once('-'));
            if let Some((a, b)) = range {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = a <= p && p < b;
                    continue;
                }
            }
            if let Some(kb) = line.strip_prefix("Rss:").filter(|_| inside) {
                return kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .unwrap()
                    * 1024;
            }
        }
        panic!("no mapping holds {p:#x}");
    }

    /// A model of one weight of `len` bytes, externalized under `dir` and
    /// mapped back: the model and its mappings.
    pub(in crate::graph) fn mapped_model(dir: &Path, len: usize) -> (ModelProto, Mappings) {
        let w = TensorProto {
            name: "w".into(),
            dims: vec![(len / 4) as i64],
            data_type: onnx::data_type::FLOAT,
            raw_data: (0..len).map(|i| (i * 7 % 251) as u8).collect(),
            ..Default::default()
        };
        let mut model = ModelProto {
            graph: Some(onnx::GraphProto {
                initializer: vec![w],
                ..Default::default()
            }),
            ..Default::default()
        };
        externalize(&mut model, dir, "weights.bin").unwrap();
        let mapped = inline(&mut model, dir).unwrap();
        (model, mapped)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn released_pages_leave_the_process_and_read_back_the_same() {
        let len = 64 * 4096;
        let dir = tempfile::tempdir().unwrap();
        let (model, mapped) = mapped_model(dir.path(), len);
        let w = &model.graph.as_ref().unwrap().initializer[0].raw_data;
        let want: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(w[..], want[..]);
        assert!(
            resident(w) >= len,
            "read pages are resident: {}",
            resident(w)
        );
        mapped.release(w);
        assert!(
            resident(w) < len / 8,
            "released: {} bytes left",
            resident(w)
        );
        assert_eq!(w[..], want[..], "read again from the file, unchanged");
        assert!(resident(w) >= len);
        // Bytes outside every mapping (the heap's) are never released: on
        // anonymous memory MADV_DONTNEED would zero them.
        assert!(mapped.contains(w) && !mapped.contains(&want));
        mapped.release(&want);
        assert!(want
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i * 7 % 251) as u8));
    }

    #[test]
    fn locations_outside_the_folder_are_refused() {
        let dir = Path::new("/models/m");
        assert_eq!(
            inside(dir, "w.data").unwrap(),
            PathBuf::from("/models/m/w.data")
        );
        assert_eq!(
            inside(dir, "sub/./w.data").unwrap(),
            PathBuf::from("/models/m/sub/./w.data")
        );
        assert!(inside(dir, "../w.data").is_err());
        assert!(inside(dir, "sub/../../w.data").is_err());
        assert!(inside(dir, "/etc/passwd").is_err());
    }
}
