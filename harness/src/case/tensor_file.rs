//! Tensors read from files: the one reader behind a case's `file = "..."`
//! and the command line's `--input name=FILE`, so both accept the same
//! formats. `.npy` and `.npz` are NumPy's (read with `ndarray-npy`; the
//! element type is the file's own, tried against every type xdiff has a
//! NumPy spelling for); any other file is an ONNX `TensorProto` (`.pb`, as
//! in backend-test directories).

use std::io::Cursor;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpyExt, ReadNpzError, ReadableElement};

use crate::onnx;
use crate::tensor::{Element, Tensor};

/// Reads the tensor in `path` for the input `input` (an `.npz` holds it as
/// the array named `input`, or as its only array). The error is the reason
/// alone; the caller names the file and the key.
pub fn read(path: &Path, input: &str) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            npy_fits(&bytes)?;
            any_type(&mut Npy(&bytes))
        }
        Some("npz") => any_type(&mut Npz::open(bytes, input)?),
        _ => {
            let p = onnx::decode_tensor(&bytes).map_err(|e| format!("not a TensorProto: {e}"))?;
            Tensor::from_proto(&p).map_err(|e| e.to_string())
        }
    }
}

/// Checks the sizes a `.npy` claims against the bytes it has, before
/// `ndarray-npy` allocates them: the header's length (v2/v3 spell it in 32
/// bits), then its shape (every element takes at least one byte).
fn npy_fits(bytes: &[u8]) -> Result<(), String> {
    let bad = |what: String| format!("not a readable .npy: {what}");
    let (len, start) = match bytes {
        [0x93, b'N', b'U', b'M', b'P', b'Y', 1, _, a, b, ..] => {
            (u16::from_le_bytes([*a, *b]) as usize, 10)
        }
        [0x93, b'N', b'U', b'M', b'P', b'Y', 2 | 3, _, a, b, c, d, ..] => {
            (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 12)
        }
        _ => return Err(bad("no NumPy magic and version at the start".into())),
    };
    let data = (bytes.len() - start).checked_sub(len).ok_or_else(|| {
        bad(format!(
            "the header claims {len} bytes, the file has {}",
            bytes.len() - start
        ))
    })?;
    let header = Header::from_reader(&mut Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    match count {
        Some(n) if n <= data => Ok(()),
        _ => Err(bad(format!(
            "the header claims shape {:?}, more elements than its {data} data bytes hold",
            header.shape
        ))),
    }
}

/// A NumPy array source, read as element type `T`: `Ok(None)` when the
/// file holds another type.
trait NumpySource {
    fn read<T: ReadableElement + Element>(&mut self) -> Result<Option<Tensor>, String>;
}

/// The array of `src` in whichever element type it holds.
fn any_type(src: &mut impl NumpySource) -> Result<Tensor, String> {
    macro_rules! first_of {
        ($($t:ty),*) => {
            $(if let Some(t) = src.read::<$t>()? {
                return Ok(t);
            })*
        };
    }
    first_of!(f32, f64, i64, i32, i16, i8, u8, u16, u32, u64, bool);
    Err("holds an element type xdiff does not read from NumPy files (float32, float64, int8-64, uint8-64, bool; write float16 as a .pb TensorProto)".into())
}

/// `a` as a tensor in standard (C) layout, whatever order the file used.
fn wrap<T: Element>(a: ArrayD<T>) -> Tensor {
    if a.is_standard_layout() {
        T::wrap(a)
    } else {
        T::wrap(a.as_standard_layout().into_owned())
    }
}

fn npy_result<T: Element>(r: Result<ArrayD<T>, ReadNpyError>) -> Result<Option<Tensor>, String> {
    match r {
        Ok(a) => Ok(Some(wrap(a))),
        Err(ReadNpyError::WrongDescriptor(_)) => Ok(None),
        Err(e) => Err(format!("not a readable .npy: {e}")),
    }
}

struct Npy<'a>(&'a [u8]);

impl NumpySource for Npy<'_> {
    fn read<T: ReadableElement + Element>(&mut self) -> Result<Option<Tensor>, String> {
        npy_result(ArrayD::<T>::read_npy(Cursor::new(self.0)))
    }
}

/// One array of an `.npz` archive.
struct Npz {
    reader: NpzReader<Cursor<Vec<u8>>>,
    name: String,
}

impl Npz {
    /// The array named `input`, or the archive's only array.
    fn open(bytes: Vec<u8>, input: &str) -> Result<Npz, String> {
        let bad = |e: ReadNpzError| format!("not a readable .npz: {e}");
        let mut reader = NpzReader::new(Cursor::new(bytes)).map_err(bad)?;
        let names = reader.names().map_err(bad)?;
        let name = match names.as_slice() {
            _ if names.iter().any(|n| n == input) => input.to_string(),
            [only] => only.clone(),
            _ => {
                return Err(format!(
                    "holds no array named `{input}` and more than one array ({})",
                    names.join(", ")
                ))
            }
        };
        Ok(Npz { reader, name })
    }
}

impl NumpySource for Npz {
    fn read<T: ReadableElement + Element>(&mut self) -> Result<Option<Tensor>, String> {
        match self.reader.by_name::<OwnedRepr<T>, IxDyn>(&self.name) {
            Err(ReadNpzError::Npy(e)) => npy_result::<T>(Err(e)),
            Err(e) => Err(format!("not a readable .npz: {e}")),
            Ok(a) => npy_result(Ok(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::{NpzWriter, WriteNpyExt};

    fn npy<T: ndarray_npy::WritableElement>(a: &ArrayD<T>) -> Vec<u8> {
        let mut out = Vec::new();
        a.write_npy(&mut out).unwrap();
        out
    }

    #[test]
    fn npy_keeps_the_files_element_type_and_shape() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), (0..6).map(|i| i as i64).collect()).unwrap();
        let t = any_type(&mut Npy(&npy(&a))).unwrap();
        assert_eq!(t, Tensor::I64(a));
        let b = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5f64, 1.5, 2.5]).unwrap();
        assert_eq!(any_type(&mut Npy(&npy(&b))).unwrap(), Tensor::F64(b));
    }

    #[test]
    fn npz_picks_the_array_named_like_the_input_or_the_only_one() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0f32, 2.0]).unwrap();
        let y = ArrayD::from_shape_vec(IxDyn(&[1]), vec![7i32]).unwrap();
        let mut w = NpzWriter::new(Cursor::new(Vec::new()));
        w.add_array("x", &x).unwrap();
        w.add_array("y", &y).unwrap();
        let two = w.finish().unwrap().into_inner();
        let read = |bytes: &[u8], input| any_type(&mut Npz::open(bytes.to_vec(), input)?);
        assert_eq!(read(&two, "y").unwrap(), Tensor::I32(y));
        assert!(read(&two, "z").unwrap_err().contains("no array named `z`"));
        let mut w = NpzWriter::new(Cursor::new(Vec::new()));
        w.add_array("arr_0", &x).unwrap();
        let one = w.finish().unwrap().into_inner();
        assert_eq!(read(&one, "image").unwrap(), Tensor::F32(x));
    }

    #[test]
    fn a_file_that_is_no_array_says_so() {
        assert!(any_type(&mut Npy(b"not numpy"))
            .unwrap_err()
            .contains("not a readable .npy"));
    }
}
