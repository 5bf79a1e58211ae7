//! Host tensors: the one currency every backend hands back to the harness.
//!
//! A [`Tensor`] keeps the dtype the backend produced (an f32 output stays f32)
//! so nothing is widened to f64 until the diff streams over it. It converts
//! from and to ONNX `TensorProto`s, which is how initializers, backend-test
//! `.pb` files and inline case values arrive.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use std::fmt;

use crate::onnx::{data_type as dt, TensorProto};

/// Element types xdiff understands. Names follow ONNX (`float32` = FLOAT).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F16,
    BF16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl DType {
    /// All dtypes, for error messages and tables.
    pub const ALL: [DType; 13] = [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// The ONNX spelling used in case files and reports (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
        }
    }

    /// Parses a case-file spelling; accepts the short aliases `f32`, `i64`, `float`, `double`.
    pub fn parse(s: &str) -> Option<DType> {
        Some(match s {
            "float16" | "f16" | "half" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "float32" | "f32" | "float" => DType::F32,
            "float64" | "f64" | "double" => DType::F64,
            "int8" | "i8" => DType::I8,
            "int16" | "i16" => DType::I16,
            "int32" | "i32" => DType::I32,
            "int64" | "i64" => DType::I64,
            "uint8" | "u8" => DType::U8,
            "uint16" | "u16" => DType::U16,
            "uint32" | "u32" => DType::U32,
            "uint64" | "u64" => DType::U64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }

    /// ONNX `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F16 => dt::FLOAT16,
            DType::BF16 => dt::BFLOAT16,
            DType::F32 => dt::FLOAT,
            DType::F64 => dt::DOUBLE,
            DType::I8 => dt::INT8,
            DType::I16 => dt::INT16,
            DType::I32 => dt::INT32,
            DType::I64 => dt::INT64,
            DType::U8 => dt::UINT8,
            DType::U16 => dt::UINT16,
            DType::U32 => dt::UINT32,
            DType::U64 => dt::UINT64,
            DType::Bool => dt::BOOL,
        }
    }

    /// From an ONNX `TensorProto.DataType` code; `None` for types xdiff does not handle
    /// (strings, complex, float8, int4).
    pub fn from_onnx(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.onnx_code() == code)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    pub fn is_int(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A host tensor in its native dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F16(ArrayD<f16>),
    BF16(ArrayD<bf16>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    Bool(ArrayD<bool>),
}

/// Applies `$body` to the array inside any [`Tensor`] variant, bound as `$a`.
#[macro_export]
macro_rules! with_array {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::tensor::Tensor::F16($a) => $body,
            $crate::tensor::Tensor::BF16($a) => $body,
            $crate::tensor::Tensor::F32($a) => $body,
            $crate::tensor::Tensor::F64($a) => $body,
            $crate::tensor::Tensor::I8($a) => $body,
            $crate::tensor::Tensor::I16($a) => $body,
            $crate::tensor::Tensor::I32($a) => $body,
            $crate::tensor::Tensor::I64($a) => $body,
            $crate::tensor::Tensor::U8($a) => $body,
            $crate::tensor::Tensor::U16($a) => $body,
            $crate::tensor::Tensor::U32($a) => $body,
            $crate::tensor::Tensor::U64($a) => $body,
            $crate::tensor::Tensor::Bool($a) => $body,
        }
    };
}

/// `$body` with the element type of `$dtype` bound to `$t`.
macro_rules! with_element {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::F16 => {
                type $t = f16;
                $body
            }
            DType::BF16 => {
                type $t = bf16;
                $body
            }
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            DType::I8 => {
                type $t = i8;
                $body
            }
            DType::I16 => {
                type $t = i16;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            DType::U8 => {
                type $t = u8;
                $body
            }
            DType::U16 => {
                type $t = u16;
                $body
            }
            DType::U32 => {
                type $t = u32;
                $body
            }
            DType::U64 => {
                type $t = u64;
                $body
            }
            DType::Bool => {
                type $t = bool;
                $body
            }
        }
    };
}

/// Scalar element conversion to and from f64, used by the diff and by casts.
pub trait Element: Copy + Default + Send + Sync + 'static {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    /// Conversion with Rust `as` semantics (saturating for ints; NaN -> 0).
    fn from_f64(v: f64) -> Self;
    fn wrap(a: ArrayD<Self>) -> Tensor;
}

macro_rules! element {
    ($t:ty, $v:ident, $d:ident, |$x:ident| $to:expr, |$y:ident| $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline]
            fn to_f64(self) -> f64 {
                let $x = self;
                $to
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                let $y = v;
                $from
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
        }
    };
}

element!(f16, F16, F16, |x| x.to_f64(), |y| f16::from_f64(y));
element!(bf16, BF16, BF16, |x| x.to_f64(), |y| bf16::from_f64(y));
element!(f32, F32, F32, |x| x as f64, |y| y as f32);
element!(f64, F64, F64, |x| x, |y| y);
element!(i8, I8, I8, |x| x as f64, |y| y as i8);
element!(i16, I16, I16, |x| x as f64, |y| y as i16);
element!(i32, I32, I32, |x| x as f64, |y| y as i32);
element!(i64, I64, I64, |x| x as f64, |y| y as i64);
element!(u8, U8, U8, |x| x as f64, |y| y as u8);
element!(u16, U16, U16, |x| x as f64, |y| y as u16);
element!(u32, U32, U32, |x| x as f64, |y| y as u32);
element!(u64, U64, U64, |x| x as f64, |y| y as u64);
element!(bool, Bool, Bool, |x| if x { 1.0 } else { 0.0 }, |y| y
    != 0.0);

/// Errors converting tensors.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("unsupported ONNX data type {0} (xdiff handles float16/bfloat16/float32/float64, int8-64, uint8-64 and bool)")]
    UnsupportedType(i32),
    #[error("tensor `{name}`: {what}")]
    Malformed { name: String, what: String },
    #[error("tensor `{0}` stores its data externally, which xdiff reads only for the tensors of a model loaded from its file (side files lie next to the model)")]
    External(String),
}

impl Tensor {
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F16(_) => DType::F16,
            Tensor::BF16(_) => DType::BF16,
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
            Tensor::I8(_) => DType::I8,
            Tensor::I16(_) => DType::I16,
            Tensor::I32(_) => DType::I32,
            Tensor::I64(_) => DType::I64,
            Tensor::U8(_) => DType::U8,
            Tensor::U16(_) => DType::U16,
            Tensor::U32(_) => DType::U32,
            Tensor::U64(_) => DType::U64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds a tensor of `dtype` from f64 values (Rust `as` conversion semantics).
    pub fn from_f64(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
        fn build<T: Element>(shape: &[usize], values: &[f64]) -> Tensor {
            let v: Vec<T> = values.iter().map(|&x| T::from_f64(x)).collect();
            T::wrap(ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape matches values"))
        }
        with_element!(dtype, T => build::<T>(shape, values))
    }

    /// Visits every element as f64 in logical (row-major) order, without allocating.
    #[inline]
    pub fn for_each_f64(&self, mut f: impl FnMut(f64)) {
        with_array!(self, a => a.iter().for_each(|&x| f(Element::to_f64(x))))
    }

    /// All elements as f64 (allocates; for small tensors, tests and reports).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.len());
        self.for_each_f64(|x| v.push(x));
        v
    }

    /// Whether `other` holds the same values bit for bit: same dtype and
    /// shape, signed zeros told apart, any NaN equal to any NaN. Allocates
    /// nothing for float32/float64 (the hot case: every node's inputs are
    /// checked against the reference's before a local re-evaluation).
    pub fn same_bits(&self, other: &Tensor) -> bool {
        fn eq(p: f64, q: f64) -> bool {
            p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())
        }
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return false;
        }
        match (self, other) {
            (Tensor::F64(a), Tensor::F64(b)) => a.iter().zip(b).all(|(&p, &q)| eq(p, q)),
            (Tensor::F32(a), Tensor::F32(b)) => {
                a.iter().zip(b).all(|(&p, &q)| eq(p as f64, q as f64))
            }
            _ => {
                let (x, y) = (self.to_f64_vec(), other.to_f64_vec());
                x.iter().zip(&y).all(|(&p, &q)| eq(p, q))
            }
        }
    }

    /// Integer view of an int64/int32 tensor (for shapes, axes, indices).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match self {
            Tensor::I64(a) => Some(a.iter().copied().collect()),
            Tensor::I32(a) => Some(a.iter().map(|&x| x as i64).collect()),
            _ => None,
        }
    }

    /// Converts to another dtype with Rust `as` semantics, going through f64
    /// (exact for every dtype but 64-bit integers above 2^53).
    pub fn cast(&self, to: DType) -> Tensor {
        if self.dtype() == to {
            return self.clone();
        }
        /// Row-major, as `from_f64` builds (a mapped column-major array is not).
        fn standard<T: Element>(a: ArrayD<T>) -> Tensor {
            T::wrap(if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned()
            })
        }
        if let (Tensor::I64(a), DType::I32) = (self, to) {
            return standard(a.mapv(|x| x as i32));
        }
        if let (Tensor::I32(a), DType::I64) = (self, to) {
            return standard(a.mapv(|x| x as i64));
        }
        // One pass, element by element through f64, as `from_f64` would
        // convert `to_f64_vec()` (the reference upcasts every float input
        // and weight this way: no intermediate vector).
        fn to_type<T: Element>(t: &Tensor) -> Tensor {
            with_array!(t, a => standard(a.mapv(|x| T::from_f64(Element::to_f64(x)))))
        }
        with_element!(to, T => to_type::<T>(self))
    }

    /// Reads an ONNX `TensorProto` (raw_data or typed fields, little-endian).
    pub fn from_proto(p: &TensorProto) -> Result<Tensor, TensorError> {
        proto::decode(p)
    }

    /// [`Tensor::from_proto`] with float elements widened to float64 as
    /// they are read (the float64 reference's view of a weight): one pass
    /// over `raw_data`, no array of the stored dtype in between. The values
    /// are those of `from_proto(p)?.cast(DType::F64)`; other dtypes as
    /// `from_proto`.
    pub fn from_proto_widened(p: &TensorProto) -> Result<Tensor, TensorError> {
        proto::decode_widened(p)
    }

    /// Whether [`Tensor::from_proto`] would read `p`, without converting
    /// its data: the same error where it would fail.
    pub fn check_proto(p: &TensorProto) -> Result<(), TensorError> {
        proto::check(p).map(|_| ())
    }

    /// Writes an ONNX `TensorProto` with `raw_data`.
    pub fn to_proto(&self, name: &str) -> TensorProto {
        proto::encode(self, name)
    }

    /// A tensor of `dtype` and `shape` from its elements as little-endian
    /// bytes (the layout of `raw_data`, and of the lane-worker wire, which
    /// reads them with [`Tensor::read_le_bytes`]); `name` names it in errors.
    pub fn from_le_bytes(
        name: &str,
        dtype: DType,
        shape: &[usize],
        bytes: &[u8],
    ) -> Result<Tensor, TensorError> {
        proto::from_raw(name, dtype, shape, bytes)
    }

    /// [`Tensor::from_le_bytes`] for the next `len` bytes of `r`, read
    /// straight into the array's own buffer: no copy of the bytes in
    /// between (how a lane worker's trace values arrive). `Ok(Err(_))`
    /// where `len` bytes cannot be the elements of `shape` in `dtype`
    /// (nothing is read then); `Err` where reading failed.
    pub fn read_le_bytes(
        name: &str,
        dtype: DType,
        shape: &[usize],
        len: usize,
        r: &mut impl std::io::Read,
    ) -> std::io::Result<Result<Tensor, TensorError>> {
        if let Err(e) = proto::raw_size(name, dtype, shape, len) {
            return Ok(Err(e));
        }
        if cfg!(target_endian = "big") {
            let mut bytes = vec![0u8; len];
            r.read_exact(&mut bytes)?;
            return Ok(proto::from_raw(name, dtype, shape, &bytes));
        }
        Tensor::filled(dtype, shape, |bytes| r.read_exact(bytes)).map(Ok)
    }

    /// A tensor of `dtype` and `shape` whose buffer `fill` writes as
    /// little-endian bytes (native order on this little-endian path; bool
    /// as one byte each, nonzero true): the one copy a tensor read from a
    /// pipe or downloaded from a framework needs. A zeroed vector of a
    /// primitive is fresh pages, not a fill.
    pub fn filled<E>(
        dtype: DType,
        shape: &[usize],
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Tensor, E> {
        fn pod<T: Element + bytemuck::Pod, E>(
            shape: &[usize],
            fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
        ) -> Result<Tensor, E> {
            let mut v = vec![T::zeroed(); shape.iter().product()];
            fill(bytemuck::cast_slice_mut(&mut v))?;
            Ok(T::wrap(
                ArrayD::from_shape_vec(IxDyn(shape), v).expect("size from the shape"),
            ))
        }
        Ok(match dtype {
            DType::Bool => match pod::<u8, E>(shape, fill)? {
                Tensor::U8(a) => Tensor::Bool(a.mapv(|b| b != 0)),
                _ => unreachable!("filled as u8"),
            },
            DType::F16 => pod::<f16, E>(shape, fill)?,
            DType::BF16 => pod::<bf16, E>(shape, fill)?,
            DType::F32 => pod::<f32, E>(shape, fill)?,
            DType::F64 => pod::<f64, E>(shape, fill)?,
            DType::I8 => pod::<i8, E>(shape, fill)?,
            DType::I16 => pod::<i16, E>(shape, fill)?,
            DType::I32 => pod::<i32, E>(shape, fill)?,
            DType::I64 => pod::<i64, E>(shape, fill)?,
            DType::U8 => pod::<u8, E>(shape, fill)?,
            DType::U16 => pod::<u16, E>(shape, fill)?,
            DType::U32 => pod::<u32, E>(shape, fill)?,
            DType::U64 => pod::<u64, E>(shape, fill)?,
        })
    }

    /// The elements as little-endian bytes, borrowed: `Some` for a
    /// row-major array of a plain type on a little-endian machine (every
    /// dtype but bool), so that the lane-worker wire sends a trace without
    /// copying it first; `None` otherwise (`to_proto`'s `raw_data` is then
    /// the bytes).
    pub fn le_bytes(&self) -> Option<&[u8]> {
        fn cast<T: bytemuck::Pod>(a: &ArrayD<T>) -> Option<&[u8]> {
            a.as_slice().map(bytemuck::cast_slice)
        }
        if cfg!(target_endian = "big") {
            return None;
        }
        match self {
            Tensor::F16(a) => cast(a),
            Tensor::BF16(a) => cast(a),
            Tensor::F32(a) => cast(a),
            Tensor::F64(a) => cast(a),
            Tensor::I8(a) => cast(a),
            Tensor::I16(a) => cast(a),
            Tensor::I32(a) => cast(a),
            Tensor::I64(a) => cast(a),
            Tensor::U8(a) => cast(a),
            Tensor::U16(a) => cast(a),
            Tensor::U32(a) => cast(a),
            Tensor::U64(a) => cast(a),
            Tensor::Bool(_) => None,
        }
    }
}

mod proto {
    //! TensorProto <-> Tensor, following the storage rules of onnx.proto.
    use super::*;

    fn malformed(p: &TensorProto, what: impl Into<String>) -> TensorError {
        named(&p.name, what)
    }

    fn named(name: &str, what: impl Into<String>) -> TensorError {
        TensorError::Malformed {
            name: name.to_string(),
            what: what.into(),
        }
    }

    /// The element count of `shape`, when it is one a tensor can hold
    /// (ndarray's limit: its bytes must fit in `isize`); checked before any
    /// allocation, since a file's dims are only a claim.
    fn element_count(name: &str, shape: &[usize]) -> Result<usize, TensorError> {
        // ndarray bounds the product of the non-zero dims: [2^62, 0, 4] is refused too.
        shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
            .filter(|n| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
            .map(|_| shape.iter().product())
            .ok_or_else(|| {
                named(
                    name,
                    format!("dims {shape:?} hold more elements than any tensor can"),
                )
            })
    }

    /// Checks that `held` bytes are exactly the elements of `shape` in
    /// `dtype`; the error names the tensor.
    pub(super) fn raw_size(
        name: &str,
        dtype: DType,
        shape: &[usize],
        held: usize,
    ) -> Result<(), TensorError> {
        let count = element_count(name, shape)?;
        let size = dtype.size();
        if Some(held) == count.checked_mul(size) {
            return Ok(());
        }
        let need = count.saturating_mul(size);
        Err(named(
            name,
            format!("raw_data holds {held} bytes, dims {shape:?} of {dtype} need {need}"),
        ))
    }

    /// A tensor of `shape` from its elements in order (the count checked).
    fn shaped<T: Element>(shape: &[usize], v: Vec<T>) -> Tensor {
        T::wrap(ArrayD::from_shape_vec(IxDyn(shape), v).expect("count checked"))
    }

    fn raw<T: Element, const N: usize>(
        name: &str,
        bytes: &[u8],
        shape: &[usize],
        conv: fn([u8; N]) -> T,
    ) -> Result<Tensor, TensorError> {
        raw_size(name, T::DTYPE, shape, bytes.len())?;
        let v: Vec<T> = bytes
            .chunks_exact(N)
            .map(|c| conv(c.try_into().expect("chunk size")))
            .collect();
        Ok(shaped(shape, v))
    }

    /// [`raw`] for a plain type: on a little-endian machine the bytes are
    /// the elements, copied as they are (a weight's conversion is a
    /// `memcpy` where its bytes are aligned), from any alignment.
    fn pod<T: Element + bytemuck::Pod, const N: usize>(
        name: &str,
        bytes: &[u8],
        shape: &[usize],
        conv: fn([u8; N]) -> T,
    ) -> Result<Tensor, TensorError> {
        if cfg!(target_endian = "big") {
            return raw(name, bytes, shape, conv);
        }
        raw_size(name, T::DTYPE, shape, bytes.len())?;
        // Aligned bytes are copied as they are, others element by element
        // (a loop the compiler vectorises); neither fills the vector first.
        let v: Vec<T> = match bytemuck::try_cast_slice::<u8, T>(bytes) {
            Ok(elements) => elements.to_vec(),
            Err(_) => bytes
                .chunks_exact(N)
                .map(bytemuck::pod_read_unaligned)
                .collect(),
        };
        Ok(shaped(shape, v))
    }

    /// A tensor of `dtype` and `shape` from its elements as little-endian
    /// bytes (`raw_data`'s layout); `name` names it in errors.
    pub(super) fn from_raw(
        name: &str,
        dtype: DType,
        shape: &[usize],
        b: &[u8],
    ) -> Result<Tensor, TensorError> {
        match dtype {
            DType::F16 => pod::<f16, 2>(name, b, shape, f16::from_le_bytes),
            DType::BF16 => pod::<bf16, 2>(name, b, shape, bf16::from_le_bytes),
            DType::F32 => pod::<f32, 4>(name, b, shape, f32::from_le_bytes),
            DType::F64 => pod::<f64, 8>(name, b, shape, f64::from_le_bytes),
            DType::I8 => pod::<i8, 1>(name, b, shape, i8::from_le_bytes),
            DType::I16 => pod::<i16, 2>(name, b, shape, i16::from_le_bytes),
            DType::I32 => pod::<i32, 4>(name, b, shape, i32::from_le_bytes),
            DType::I64 => pod::<i64, 8>(name, b, shape, i64::from_le_bytes),
            DType::U8 => pod::<u8, 1>(name, b, shape, u8::from_le_bytes),
            DType::U16 => pod::<u16, 2>(name, b, shape, u16::from_le_bytes),
            DType::U32 => pod::<u32, 4>(name, b, shape, u32::from_le_bytes),
            DType::U64 => pod::<u64, 8>(name, b, shape, u64::from_le_bytes),
            DType::Bool => raw::<bool, 1>(name, b, shape, |b| b[0] != 0),
        }
    }

    fn typed<T: Element, S: Copy>(
        p: &TensorProto,
        shape: &[usize],
        src: &[S],
        conv: impl Fn(S) -> T,
    ) -> Result<Tensor, TensorError> {
        let count = element_count(&p.name, shape)?;
        if src.len() != count {
            return Err(malformed(
                p,
                format!(
                    "holds {} values, dims {:?} need {}",
                    src.len(),
                    shape,
                    count
                ),
            ));
        }
        Ok(shaped(shape, src.iter().map(|&x| conv(x)).collect()))
    }

    /// What [`decode`] checks before it converts anything: the dtype, the
    /// dims, and that the data holds as many elements as they need. `Ok`
    /// (the dtype and shape) exactly when `decode` succeeds, so a model's
    /// weights can be checked at load and converted when first read.
    pub(super) fn check(p: &TensorProto) -> Result<(DType, Vec<usize>), TensorError> {
        if p.data_location == 1 || !p.external_data.is_empty() {
            return Err(TensorError::External(p.name.clone()));
        }
        let dtype =
            DType::from_onnx(p.data_type).ok_or(TensorError::UnsupportedType(p.data_type))?;
        let mut shape = Vec::with_capacity(p.dims.len());
        for &d in &p.dims {
            if d < 0 {
                return Err(malformed(p, format!("negative dimension {d}")));
            }
            shape.push(d as usize);
        }
        if !p.raw_data.is_empty() || typed_len(p) == 0 {
            raw_size(&p.name, dtype, &shape, p.raw_data.len())?;
            return Ok((dtype, shape));
        }
        let count = element_count(&p.name, &shape)?;
        let held = match dtype {
            DType::F32 => p.float_data.len(),
            DType::F64 => p.double_data.len(),
            DType::I64 => p.int64_data.len(),
            DType::U64 | DType::U32 => p.uint64_data.len(),
            _ => p.int32_data.len(),
        };
        if held != count {
            return Err(malformed(
                p,
                format!("holds {held} values, dims {shape:?} need {count}"),
            ));
        }
        Ok((dtype, shape))
    }

    pub(super) fn decode(p: &TensorProto) -> Result<Tensor, TensorError> {
        let (dtype, shape) = check(p)?;
        let shape = &shape[..];
        if !p.raw_data.is_empty() || typed_len(p) == 0 {
            return from_raw(&p.name, dtype, shape, &p.raw_data);
        }
        let i32d = &p.int32_data[..];
        match dtype {
            DType::F32 => typed(p, shape, &p.float_data, |x| x),
            DType::F64 => typed(p, shape, &p.double_data, |x| x),
            DType::I64 => typed(p, shape, &p.int64_data, |x| x),
            DType::U64 => typed(p, shape, &p.uint64_data, |x| x),
            DType::U32 => typed(p, shape, &p.uint64_data, |x| x as u32),
            DType::I32 => typed(p, shape, i32d, |x| x),
            DType::I16 => typed(p, shape, i32d, |x| x as i16),
            DType::I8 => typed(p, shape, i32d, |x| x as i8),
            DType::U16 => typed(p, shape, i32d, |x| x as u16),
            DType::U8 => typed(p, shape, i32d, |x| x as u8),
            DType::Bool => typed(p, shape, i32d, |x| x != 0),
            DType::F16 => typed(p, shape, i32d, |x| f16::from_bits(x as u16)),
            DType::BF16 => typed(p, shape, i32d, |x| bf16::from_bits(x as u16)),
        }
    }

    pub(super) fn decode_widened(p: &TensorProto) -> Result<Tensor, TensorError> {
        let (dtype, shape) = check(p)?;
        if !dtype.is_float() || (p.raw_data.is_empty() && typed_len(p) != 0) {
            let t = decode(p)?;
            return Ok(match t.dtype().is_float() {
                true => t.cast(DType::F64),
                false => t,
            });
        }
        let b = &p.raw_data[..];
        let v = match dtype {
            DType::F32 => widen(b, |c| f64::from(f32::from_le_bytes(c))),
            DType::F64 => widen(b, f64::from_le_bytes),
            DType::F16 => widen(b, |c| f16::from_le_bytes(c).to_f64()),
            DType::BF16 => widen(b, |c| bf16::from_le_bytes(c).to_f64()),
            _ => unreachable!("only float dtypes get here"),
        };
        Ok(shaped(&shape, v))
    }

    /// Each `N`-byte element of `b` as float64 (the length was checked).
    fn widen<const N: usize>(b: &[u8], conv: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        b.chunks_exact(N)
            .map(|c| conv(c.try_into().expect("chunk size")))
            .collect()
    }

    fn typed_len(p: &TensorProto) -> usize {
        p.float_data.len()
            + p.double_data.len()
            + p.int32_data.len()
            + p.int64_data.len()
            + p.uint64_data.len()
    }

    pub(super) fn encode(t: &Tensor, name: &str) -> TensorProto {
        let mut raw = Vec::with_capacity(t.len() * t.dtype().size());
        match t {
            Tensor::F16(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::BF16(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::F32(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::F64(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::I8(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::I16(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::I32(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::I64(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::U8(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::U16(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::U32(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::U64(a) => a.iter().for_each(|x| raw.extend(x.to_le_bytes())),
            Tensor::Bool(a) => a.iter().for_each(|&x| raw.push(x as u8)),
        }
        TensorProto {
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: t.dtype().onnx_code(),
            name: name.to_string(),
            raw_data: raw.into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_converts_as_from_f64_does_in_logical_order() {
        let values = [1.5, -2.25, 0.0, 65504.0, -0.0, 300.7, f64::NAN, 1e-8];
        for from in DType::ALL {
            let t = Tensor::from_f64(from, &[2, 4], &values);
            // A transposed (column-major) view: the cast is row-major.
            let t_t = with_array!(&t, a => Element::wrap(a.t().to_owned()));
            for to in DType::ALL {
                for src in [&t, &t_t] {
                    let want = Tensor::from_f64(to, src.shape(), &src.to_f64_vec());
                    let got = src.cast(to);
                    assert!(
                        got.same_bits(&want),
                        "{from:?} -> {to:?}: {got:?} != {want:?}"
                    );
                    if from != to {
                        assert!(with_array!(&got, a => a.is_standard_layout()));
                    }
                }
            }
        }
    }

    #[test]
    fn proto_round_trip_keeps_dtype_and_values() {
        let t = Tensor::from_f64(DType::F16, &[2, 2], &[1.0, -2.5, 0.0, 65504.0]);
        let back = Tensor::from_proto(&t.to_proto("x")).unwrap();
        assert_eq!(back, t);
        let b = Tensor::from_f64(DType::Bool, &[3], &[1.0, 0.0, 1.0]);
        assert_eq!(Tensor::from_proto(&b.to_proto("b")).unwrap(), b);
    }

    #[test]
    fn typed_fields_decode() {
        let p = TensorProto {
            dims: vec![3],
            data_type: dt::INT64,
            int64_data: vec![1, -2, 3],
            ..Default::default()
        };
        assert_eq!(
            Tensor::from_proto(&p).unwrap().to_i64_vec().unwrap(),
            vec![1, -2, 3]
        );
    }

    #[test]
    fn raw_bytes_at_any_alignment_read_the_same() {
        // Weights sliced from a model file start at any byte.
        let v = [1.5f32, -2.0, 3.25];
        let mut bytes = vec![0u8];
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        let t = Tensor::from_le_bytes("w", DType::F32, &[3], &bytes[1..]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.5, -2.0, 3.25]);
        let e = Tensor::from_le_bytes("w", DType::F32, &[4], &bytes[1..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("raw_data holds 12 bytes"), "{e}");
    }

    #[test]
    fn wrong_raw_size_is_named() {
        let p = TensorProto {
            dims: vec![4],
            data_type: dt::FLOAT,
            raw_data: vec![0; 8].into(),
            name: "w".into(),
            ..Default::default()
        };
        let e = Tensor::from_proto(&p).unwrap_err().to_string();
        assert!(e.contains("`w`") && e.contains("need 16"), "{e}");
        let e = Tensor::from_proto_widened(&p).unwrap_err().to_string();
        assert!(e.contains("`w`") && e.contains("need 16"), "{e}");
    }

    #[test]
    fn a_weight_widened_as_read_is_its_conversion_widened() {
        let values = [1.0, -2.5, 1e-40, 65504.0, f64::INFINITY, -0.0, 3.0e38];
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64, DType::I32] {
            let t = Tensor::from_f64(dtype, &[7], &values);
            let raw = t.to_proto("w");
            let mut typed = raw.clone();
            typed.raw_data = Default::default();
            match &t {
                Tensor::F32(a) => typed.float_data = a.iter().copied().collect(),
                Tensor::F64(a) => typed.double_data = a.iter().copied().collect(),
                Tensor::I32(a) => typed.int32_data = a.iter().copied().collect(),
                Tensor::F16(a) => typed.int32_data = a.iter().map(|x| x.to_bits().into()).collect(),
                Tensor::BF16(a) => {
                    typed.int32_data = a.iter().map(|x| x.to_bits().into()).collect()
                }
                _ => unreachable!(),
            }
            for p in [raw, typed] {
                let plain = Tensor::from_proto(&p).unwrap();
                let want = match dtype.is_float() {
                    true => plain.cast(DType::F64),
                    false => plain,
                };
                let got = Tensor::from_proto_widened(&p).unwrap();
                assert!(got.same_bits(&want), "{dtype}: {got:?} against {want:?}");
            }
        }
    }
}
