//! GGUF reader: header, metadata, tensor infos, and zero-copy tensor data from an mmap.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{GgufError, GgufErrorKind};
use crate::storage::{ByteSource, TensorBytes};
use hearth_kernels::QuantType;

const GGUF_MAGIC: u32 = 0x4655_4747; // "GGUF" little endian
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// Guards against absurd counts in corrupt headers before we allocate for them.
const MAX_ARRAY_LEN: u64 = 1 << 28;
/// Arrays longer than this (vocabularies, merges) stay in the file and are decoded on demand,
/// so the parsed header does not hold a second copy of the tokenizer.
const EAGER_ARRAY_LEN: usize = 256;

/// One metadata value, any of the GGUF value types.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
    /// A long array left in the file: decoded by `GgufFile::require_array`.
    LazyArray(LazyArray),
}

/// Where a long metadata array lives in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LazyArray {
    elem_type: u32,
    len: usize,
    offset: usize,
}

impl LazyArray {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl MetaValue {
    /// The value as an unsigned integer, if it is any integer type that is non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// Where a tensor lives in the file and what it holds.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: dims[0] is the innermost (contiguous) dimension.
    pub dims: Vec<u64>,
    pub dtype: QuantType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file; tensor bytes are served straight from the mapping.
pub struct GgufFile {
    path: PathBuf,
    pub version: u32,
    pub alignment: u64,
    pub metadata: BTreeMap<String, MetaValue>,
    pub tensors: BTreeMap<String, TensorInfo>,
    source: Arc<ByteSource>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and parses a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let source = ByteSource::map_file(&path)
            .map_err(|e| GgufError::new(&path, 0, GgufErrorKind::Io(e.to_string())))?;
        Self::parse(path, Arc::new(source))
    }

    /// Parses GGUF from bytes already in memory (tests, fuzzing).
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(name.into(), Arc::new(ByteSource::Owned(bytes)))
    }

    fn parse(path: PathBuf, source: Arc<ByteSource>) -> Result<Self, GgufError> {
        let bytes = source.bytes();
        let mut cur = Cursor { bytes, pos: 0, path: &path };
        let magic = cur.u32()?;
        if magic != GGUF_MAGIC {
            return Err(cur.error_at(0, GgufErrorKind::BadMagic(magic)));
        }
        let version = cur.u32()?;
        if !(2..=3).contains(&version) {
            return Err(cur.error_at(4, GgufErrorKind::UnsupportedVersion(version)));
        }
        let tensor_count = cur.u64()?;
        let kv_count = cur.u64()?;
        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = cur.string()?;
            let value = cur.value()?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(cur.error(GgufErrorKind::Invalid(format!(
                        "general.alignment must be a power of two, found {v:?}"
                    ))))
                }
            },
        };
        let infos = (0..tensor_count.min(MAX_ARRAY_LEN))
            .map(|_| cur.tensor_info())
            .collect::<Result<Vec<_>, _>>()?;
        if tensor_count > MAX_ARRAY_LEN {
            return Err(cur.error(GgufErrorKind::Invalid(format!("tensor count {tensor_count} is absurd"))));
        }
        let data_start = cur.pos.div_ceil(alignment as usize) as u64 * alignment;
        let tensors = place_tensors(&path, infos, data_start, alignment, bytes.len() as u64)?;
        Ok(GgufFile { path, version, alignment, metadata, tensors, source })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's description, in name order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.values()
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The bytes of one tensor, borrowed from the mapping (no copy).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> TensorBytes {
        TensorBytes::new(self.source.clone(), info.offset as usize, info.n_bytes as usize)
    }

    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// A required metadata value, with an error naming the key when it is missing.
    pub fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.meta(key)
            .ok_or_else(|| GgufError::new(&self.path, 0, GgufErrorKind::MissingKey(key.to_string())))
    }

    pub fn require_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| self.wrong_type(key, "an integer", v))
    }

    pub fn require_f64(&self, key: &str) -> Result<f64, GgufError> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| self.wrong_type(key, "a number", v))
    }

    pub fn require_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong_type(key, "a string", v))
    }

    /// A metadata array, decoded from the file when it was left there.
    pub fn require_array(&self, key: &str) -> Result<std::borrow::Cow<'_, [MetaValue]>, GgufError> {
        match self.require(key)? {
            MetaValue::Array(items) => Ok(std::borrow::Cow::Borrowed(items)),
            MetaValue::LazyArray(lazy) => {
                let mut cur = Cursor { bytes: self.source.bytes(), pos: lazy.offset, path: &self.path };
                let items = (0..lazy.len)
                    .map(|_| cur.value_of_type(lazy.elem_type, cur.pos, 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(std::borrow::Cow::Owned(items))
            }
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// Length of a metadata array without decoding it.
    pub fn array_len(&self, key: &str) -> Result<usize, GgufError> {
        match self.require(key)? {
            MetaValue::Array(items) => Ok(items.len()),
            MetaValue::LazyArray(lazy) => Ok(lazy.len),
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &MetaValue) -> GgufError {
        let found = format!("{found:?}").chars().take(60).collect::<String>();
        GgufError::new(
            &self.path,
            0,
            GgufErrorKind::Invalid(format!("metadata `{key}` should be {expected}, found {found}")),
        )
    }
}

/// Checks tensor placement against the file and converts relative offsets to absolute ones.
fn place_tensors(
    path: &Path,
    infos: Vec<(TensorInfo, u64)>,
    data_start: u64,
    alignment: u64,
    file_len: u64,
) -> Result<BTreeMap<String, TensorInfo>, GgufError> {
    let mut tensors = BTreeMap::new();
    for (mut info, info_pos) in infos {
        let err = |kind| GgufError::new(path, info_pos, kind);
        if info.offset % alignment != 0 {
            return Err(err(GgufErrorKind::Invalid(format!(
                "tensor `{}` offset {} is not a multiple of the alignment {alignment}",
                info.name, info.offset
            ))));
        }
        let start = data_start.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(info.n_bytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_len => info.offset = start,
            _ => {
                return Err(err(GgufErrorKind::Truncated(format!(
                    "tensor `{}` needs bytes up to {} past the data start {data_start}, but the file has {file_len} bytes",
                    info.name,
                    info.offset.saturating_add(info.n_bytes)
                ))))
            }
        }
        if tensors.contains_key(&info.name) {
            return Err(err(GgufErrorKind::Invalid(format!("tensor `{}` appears twice", info.name))));
        }
        tensors.insert(info.name.clone(), info);
    }
    Ok(tensors)
}

/// Bounds-checked little-endian reader over the header bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn error(&self, kind: GgufErrorKind) -> GgufError {
        GgufError::new(self.path, self.pos as u64, kind)
    }

    fn error_at(&self, offset: u64, kind: GgufErrorKind) -> GgufError {
        GgufError::new(self.path, offset, kind)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.error(GgufErrorKind::Truncated(format!(
                "needed {n} bytes for {what}, only {} left",
                self.bytes.len() - self.pos
            )))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array("a u32")?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array("a u64")?))
    }

    fn length(&mut self, what: &str) -> Result<usize, GgufError> {
        let start = self.pos;
        let n = self.u64()?;
        if n > MAX_ARRAY_LEN || n as usize > self.bytes.len() {
            return Err(self.error_at(
                start as u64,
                GgufErrorKind::Invalid(format!("{what} length {n} is larger than the file")),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let start = self.pos;
        let n = self.length("string")?;
        let raw = self.take(n, "a string")?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| self.error_at(start as u64, GgufErrorKind::Invalid("string is not valid UTF-8".into())))
    }

    fn value(&mut self) -> Result<MetaValue, GgufError> {
        let start = self.pos;
        let ty = self.u32()?;
        self.value_of_type(ty, start, 0)
    }

    fn value_of_type(&mut self, ty: u32, start: usize, depth: u32) -> Result<MetaValue, GgufError> {
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>("a u8")?[0]),
            1 => MetaValue::I8(self.array::<1>("an i8")?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array("a u16")?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array("an i16")?)),
            4 => MetaValue::U32(self.u32()?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array("an i32")?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array("an f32")?)),
            7 => match self.array::<1>("a bool")?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(self.error_at(start as u64, GgufErrorKind::Invalid(format!("bool byte {b}")))),
            },
            8 => MetaValue::String(self.string()?),
            9 if depth < 2 => {
                let elem_ty = self.u32()?;
                let n = self.length("array")?;
                if n > EAGER_ARRAY_LEN && depth == 0 && elem_ty != 9 {
                    let offset = self.pos;
                    for _ in 0..n {
                        self.skip_value(elem_ty, start)?;
                    }
                    return Ok(MetaValue::LazyArray(LazyArray { elem_type: elem_ty, len: n, offset }));
                }
                let mut items = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    items.push(self.value_of_type(elem_ty, self.pos, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64()?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array("an i64")?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array("an f64")?)),
            other => {
                return Err(self.error_at(start as u64, GgufErrorKind::Invalid(format!("unknown metadata value type {other}"))))
            }
        })
    }

    /// Steps over one scalar or string value, checking bounds, without allocating.
    fn skip_value(&mut self, ty: u32, start: usize) -> Result<(), GgufError> {
        let size = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => self.length("string")?,
            other => {
                return Err(self.error_at(start as u64, GgufErrorKind::Invalid(format!("unknown array element type {other}"))))
            }
        };
        self.take(size, "an array element").map(|_| ())
    }

    fn tensor_info(&mut self) -> Result<(TensorInfo, u64), GgufError> {
        let start = self.pos as u64;
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.error_at(start, GgufErrorKind::Invalid(format!("tensor `{name}` has {n_dims} dimensions"))));
        }
        let dims = (0..n_dims).map(|_| self.u64()).collect::<Result<Vec<_>, _>>()?;
        let type_id = self.u32()?;
        let dtype = QuantType::from_ggml_id(type_id)
            .ok_or_else(|| self.error_at(start, GgufErrorKind::UnknownTensorType { tensor: name.clone(), type_id }))?;
        let offset = self.u64()?;
        let n_bytes = tensor_byte_size(&name, &dims, dtype).map_err(|msg| self.error_at(start, GgufErrorKind::Invalid(msg)))?;
        Ok((TensorInfo { name, dims, dtype, offset, n_bytes }, start))
    }
}

fn tensor_byte_size(name: &str, dims: &[u64], dtype: QuantType) -> Result<u64, String> {
    let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let n = n.filter(|&n| n < (1u64 << 40)).ok_or_else(|| format!("tensor `{name}` has absurd dims {dims:?}"))?;
    let block = dtype.block_len() as u64;
    if !dims[0].is_multiple_of(block) {
        return Err(format!(
            "tensor `{name}`: row length {} is not a multiple of the {dtype} block size {block}",
            dims[0]
        ));
    }
    Ok(n / block * dtype.block_bytes() as u64)
}
