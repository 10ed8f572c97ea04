//! PyTorch `torch.save` zip checkpoints: the pickled dict is read as data and its tensors rebuilt.
//!
//! Layout: `<archive>/data.pkl` (the pickled object), `<archive>/data/<key>` (one file per
//! storage, raw bytes) and optionally `<archive>/byteorder` (`little` or `big`). A tensor is
//! pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` where
//! `storage` is the persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
//! Views (any strides, storage offsets) are gathered into row-major data; storages shared by
//! several tensors or entries are read from the zip once.
use super::pickle::{self, Value};
use crate::data::{DType, TensorData};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use zip::ZipArchive;

/// What was read from a `.pth` checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct PthCheckpoint {
    /// The top-level keys of the checkpoint dict, in file order (e.g. `ema`, `args`, `epoch`).
    pub keys: Vec<String>,
    /// The entry the tensors come from; `None` when the top level itself is the state dict.
    pub entry: Option<String>,
    /// The tensors of that entry, sorted by key.
    pub tensors: Vec<(String, TensorData)>,
}

/// Reads a PyTorch zip checkpoint without executing anything in it.
///
/// `entry` names the top-level entry holding the state dict; by default it is `ema` if present,
/// else `model`, else the top-level dict itself when all its values are tensors. Other values
/// (e.g. a pickled `argparse.Namespace` under `args`) are skipped as opaque data. Anything
/// malformed is an [`Error::Format`] naming the file and what was wrong.
pub fn read_pth(path: &Path, entry: Option<&str>) -> Result<PthCheckpoint> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_pth_from(BufReader::new(file), entry).map_err(|e| match e {
        Error::Format(msg) => Error::Format(format!("{}: {msg}", path.display())),
        other => other,
    })
}

/// [`read_pth`] on a checkpoint held in memory (errors name no file).
pub fn read_pth_bytes(bytes: &[u8], entry: Option<&str>) -> Result<PthCheckpoint> {
    read_pth_from(std::io::Cursor::new(bytes), entry)
}

fn read_pth_from<R: Read + std::io::Seek>(reader: R, entry: Option<&str>) -> Result<PthCheckpoint> {
    let mut archive = Archive::open(reader)?;
    let root = archive.read_pickle()?;
    let top = dict_items(&root)
        .ok_or_else(|| Error::Format(format!("the checkpoint holds a {}, not a dict", root.kind())))?;
    let mut keys = Vec::with_capacity(top.len());
    for (k, _) in &top {
        let k = k.as_str().ok_or_else(|| Error::Format(format!("top-level key is a {}, not a str", k.kind())))?;
        if !keys.iter().any(|x| x == k) {
            keys.push(k.to_string());
        }
    }
    let lookup = |name: &str| top.iter().rev().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v);
    let available = || keys.join(", ");

    let (entry, state_dict) = match entry {
        Some(name) => {
            let v = lookup(name).ok_or_else(|| {
                Error::Format(format!("no entry '{name}' in the checkpoint; available entries: {}", available()))
            })?;
            let items = dict_items(v).ok_or_else(|| {
                Error::Format(format!(
                    "entry '{name}' is a {}, not a state dict; available entries: {}",
                    v.kind(),
                    available()
                ))
            })?;
            (Some(name.to_string()), items)
        }
        None => match ["ema", "model"].into_iter().find_map(|n| lookup(n).map(|v| (n, v))) {
            Some((name, v)) => {
                let items = dict_items(v)
                    .ok_or_else(|| Error::Format(format!("entry '{name}' is a {}, not a state dict", v.kind())))?;
                (Some(name.to_string()), items)
            }
            None if top.iter().all(|(_, v)| is_tensor(v)) => (None, top.clone()),
            None => {
                return Err(Error::Format(format!(
                    "no 'ema' or 'model' entry and the top level is not a state dict; choose an entry \
                     among: {}",
                    available()
                )));
            }
        },
    };

    let full_name = |key: &str| match &entry {
        Some(e) => format!("{e}.{key}"),
        None => key.to_string(),
    };
    let mut tensors = BTreeMap::new();
    for (k, v) in &state_dict {
        let key = k.as_str().ok_or_else(|| Error::Format(format!("state-dict key is a {}, not a str", k.kind())))?;
        let t = archive
            .tensor(v, 0)
            .map_err(|e| Error::Format(format!("tensor '{}': {}", full_name(key), strip_format(e))))?;
        tensors.insert(key.to_string(), t);
    }
    Ok(PthCheckpoint { keys, entry, tensors: tensors.into_iter().collect() })
}

fn strip_format(e: Error) -> String {
    match e {
        Error::Format(msg) => msg,
        other => other.to_string(),
    }
}

/// The (key, value) pairs of a dict or an `OrderedDict`.
fn dict_items(v: &Value) -> Option<Vec<(Value, Value)>> {
    match v {
        Value::Dict(d) => Some(d.borrow().clone()),
        Value::Object(o) => {
            let o = o.borrow();
            let g = o.callable.as_global()?;
            (g.module == "collections" && g.name == "OrderedDict").then(|| o.items.clone())
        }
        _ => None,
    }
}

/// The rebuild function of a pickled tensor (or parameter), if `v` is one.
fn rebuild_fn(v: &Value) -> Option<(String, Value)> {
    let Value::Object(o) = v else { return None };
    let o = o.borrow();
    let g = o.callable.as_global()?;
    let known = ["_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"];
    (g.module == "torch._utils" && known.contains(&g.name.as_str())).then(|| (g.name.clone(), o.args.clone()))
}

fn is_tensor(v: &Value) -> bool {
    rebuild_fn(v).is_some()
}

fn storage_dtype(class: &str) -> Option<DType> {
    Some(match class {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ByteStorage" => DType::U8,
        "CharStorage" => DType::I8,
        "BoolStorage" => DType::Bool,
        _ => return None,
    })
}

fn usize_of(v: &Value, what: &str) -> Result<usize> {
    let i = v.as_int().ok_or_else(|| Error::Format(format!("{what} is a {}, not an int", v.kind())))?;
    usize::try_from(i).map_err(|_| Error::Format(format!("{what} is {i}, not a size")))
}

fn usizes_of(v: &Value, what: &str) -> Result<Vec<usize>> {
    let t = v.as_tuple().ok_or_else(|| Error::Format(format!("{what} is a {}, not a tuple", v.kind())))?;
    t.iter().map(|x| usize_of(x, what)).collect()
}

/// An open checkpoint zip with its storages cached by key.
struct Archive<R> {
    zip: ZipArchive<R>,
    /// `<archive>/`, the folder all entries live in.
    prefix: String,
    big_endian: bool,
    storages: HashMap<String, Rc<Vec<u8>>>,
}

impl<R: Read + std::io::Seek> Archive<R> {
    fn open(reader: R) -> Result<Self> {
        let mut zip = ZipArchive::new(reader).map_err(|e| Error::Format(format!("not a zip file ({e})")))?;
        let pkl = zip
            .file_names()
            .filter(|n| *n == "data.pkl" || (n.ends_with("/data.pkl") && n.matches('/').count() == 1))
            .min()
            .map(str::to_string)
            .ok_or_else(|| Error::Format("not a PyTorch checkpoint: missing data.pkl".into()))?;
        let prefix = pkl[..pkl.len() - "data.pkl".len()].to_string();
        let big_endian = match zip.by_name(&format!("{prefix}byteorder")) {
            Ok(f) => {
                let mut s = String::new();
                f.take(16).read_to_string(&mut s).map_err(|e| Error::Format(format!("byteorder: {e}")))?;
                match s.trim() {
                    "little" => false,
                    "big" => true,
                    other => {
                        return Err(Error::Format(format!("byteorder is {other:?}, not little or big")));
                    }
                }
            }
            Err(_) => false,
        };
        Ok(Archive { zip, prefix, big_endian, storages: HashMap::new() })
    }

    fn read_pickle(&mut self) -> Result<Value> {
        let name = format!("{}data.pkl", self.prefix);
        let mut f = self.zip.by_name(&name).map_err(|e| Error::Format(format!("{name}: {e}")))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| Error::Format(format!("{name}: {e}")))?;
        pickle::load(&bytes).map_err(|e| Error::Format(format!("data.pkl: {}", strip_format(e))))
    }

    /// The bytes of storage `key`, which must hold exactly `nbytes`.
    fn storage(&mut self, key: &str, nbytes: usize) -> Result<Rc<Vec<u8>>> {
        if let Some(s) = self.storages.get(key) {
            if s.len() != nbytes {
                return Err(Error::Format(format!(
                    "storage {key} has {} bytes, but is also declared with {nbytes}",
                    s.len()
                )));
            }
            return Ok(Rc::clone(s));
        }
        if key.is_empty() || key.contains('/') || key.contains('\\') || key.starts_with('.') {
            return Err(Error::Format(format!("storage key {key:?} is not a plain name")));
        }
        let name = format!("{}data/{key}", self.prefix);
        let f = self.zip.by_name(&name).map_err(|_| Error::Format(format!("missing storage file {name}")))?;
        let mut bytes = Vec::with_capacity(nbytes.min(usize::try_from(f.size()).unwrap_or(0)));
        let limit = u64::try_from(nbytes).unwrap_or(u64::MAX).saturating_add(1);
        f.take(limit).read_to_end(&mut bytes).map_err(|e| Error::Format(format!("{name}: {e}")))?;
        if bytes.len() != nbytes {
            let more = if bytes.len() > nbytes { "more than " } else { "" };
            return Err(Error::Format(format!(
                "storage {key} has {more}{} bytes, but is declared with {nbytes}",
                bytes.len()
            )));
        }
        let bytes = Rc::new(bytes);
        self.storages.insert(key.to_string(), Rc::clone(&bytes));
        Ok(bytes)
    }

    /// Rebuilds a pickled tensor as row-major data.
    fn tensor(&mut self, v: &Value, depth: usize) -> Result<TensorData> {
        let (func, args) = rebuild_fn(v).ok_or_else(|| Error::Format(format!("is a {}, not a tensor", v.kind())))?;
        let args = args.as_tuple().unwrap_or_default();
        if func != "_rebuild_tensor_v2" {
            // A Parameter wraps the tensor as its first argument.
            return match args.first() {
                Some(inner) if depth < 4 => self.tensor(inner, depth + 1),
                _ => Err(Error::Format(format!("{func} has no tensor argument"))),
            };
        }
        let [storage, offset, size, stride, ..] = args else {
            return Err(Error::Format(format!("_rebuild_tensor_v2 has {} arguments, expected at least 4", args.len())));
        };
        let offset = usize_of(offset, "storage offset")?;
        let size = usizes_of(size, "size")?;
        let stride = usizes_of(stride, "stride")?;
        if size.len() != stride.len() {
            return Err(Error::Format(format!("size {size:?} and stride {stride:?} differ in rank")));
        }

        let Value::PersistentId(id) = storage else {
            return Err(Error::Format(format!("storage is a {}, not a persistent id", storage.kind())));
        };
        let (dtype, key, numel) = match id.as_tuple() {
            Some([tag, class, key, _location, numel]) if tag.as_str() == Some("storage") => {
                let g =
                    class.as_global().ok_or_else(|| Error::Format(format!("storage type is a {}", class.kind())))?;
                let dtype = storage_dtype(&g.name)
                    .filter(|_| g.module == "torch")
                    .ok_or_else(|| Error::Format(format!("unsupported storage type {}.{}", g.module, g.name)))?;
                let key = key.as_str().ok_or_else(|| Error::Format(format!("storage key is a {}", key.kind())))?;
                (dtype, key.to_string(), usize_of(numel, "storage size")?)
            }
            _ => {
                return Err(Error::Format(format!("persistent id {:?} is not a storage record", id)));
            }
        };
        let es = dtype.size();
        let nbytes =
            numel.checked_mul(es).ok_or_else(|| Error::Format(format!("storage {key} size {numel} overflows")))?;
        let bytes = self.storage(&key, nbytes)?;
        let mut out = gather(&key, &bytes, es, offset, &size, &stride)?;
        if self.big_endian {
            out.chunks_exact_mut(es).for_each(<[u8]>::reverse);
        }
        TensorData::from_le_bytes(&out, dtype, size)
    }
}

/// A view may repeat its storage (stride 0, as `expand` makes) at most this many times over;
/// beyond that a corrupt size could ask for terabytes.
const MAX_REPEAT: usize = 1024;

/// Copies the elements of a strided view of storage `key` (element size `es`) into row-major
/// order, after checking that the view lies inside the storage.
fn gather(key: &str, bytes: &[u8], es: usize, offset: usize, size: &[usize], stride: &[usize]) -> Result<Vec<u8>> {
    let too_big = || Error::Format(format!("storage {key}: view of size {size:?} is too large"));
    let numel = size.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(too_big)?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    let out_bytes = numel.checked_mul(es).ok_or_else(too_big)?;
    if out_bytes > bytes.len().max(1 << 20).saturating_mul(MAX_REPEAT) {
        return Err(too_big());
    }
    // One past the last element, in bytes.
    let end = size
        .iter()
        .zip(stride)
        .try_fold(offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
        .and_then(|l| l.checked_add(1))
        .and_then(|n| n.checked_mul(es));
    match end {
        Some(end) if end <= bytes.len() => {}
        Some(end) => {
            return Err(Error::Format(format!("storage {key} has {} bytes, view needs {end}", bytes.len())));
        }
        None => return Err(too_big()),
    }
    let mut contiguous = true;
    let mut expect = 1usize;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expect {
            contiguous = false;
        }
        expect = expect.saturating_mul(d);
    }
    let start = offset * es; // offset * es < end, so this does not overflow
    if contiguous {
        return Ok(bytes[start..start + out_bytes].to_vec());
    }
    let mut out = Vec::with_capacity(out_bytes);
    let mut index = vec![0usize; size.len()];
    let mut pos = offset;
    for _ in 0..numel {
        out.extend_from_slice(&bytes[pos * es..(pos + 1) * es]);
        // Advance the odometer from the innermost dimension. Wrapping arithmetic: a carry may
        // step one stride past the view before stepping back, and the result is in range.
        for d in (0..size.len()).rev() {
            index[d] += 1;
            pos = pos.wrapping_add(stride[d]);
            if index[d] < size[d] {
                break;
            }
            pos = pos.wrapping_sub(stride[d].wrapping_mul(size[d]));
            index[d] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{read_safetensors, shared_dir};
    use std::io::{Cursor, Write};

    fn golden(name: &str) -> std::path::PathBuf {
        shared_dir().join("golden/pth").join(name)
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("karl-pth-{}-{name}", std::process::id()))
    }

    /// A zip of (name, bytes) entries, stored uncompressed as torch does.
    fn make_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn read_bytes(zip: Vec<u8>, entry: Option<&str>) -> Result<PthCheckpoint> {
        read_pth_from(Cursor::new(zip), entry)
    }

    /// Pickle of `{name: _rebuild_tensor_v2(storage('0', <class>, numel), offset, size, stride)}`
    /// as an OrderedDict at the top level (a flat state dict).
    fn tensor_pickle(name: &str, class: &str, numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
        p.push(0x8c);
        p.push(name.len() as u8);
        p.extend(name.as_bytes());
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((\x8c\x07storage");
        p.extend(format!("ctorch\n{class}\n").as_bytes());
        p.extend(b"\x8c\x010\x8c\x03cpuK");
        p.extend([numel, b't', b'Q', b'K', offset, b'(']);
        size.iter().for_each(|&d| p.extend([b'K', d]));
        p.extend(b"t(");
        stride.iter().for_each(|&d| p.extend([b'K', d]));
        p.extend(b"t\x89ccollections\nOrderedDict\n)RtRu.");
        p
    }

    fn expected_json() -> serde_json::Value {
        let text = std::fs::read_to_string(golden("tiny_views.expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn check_against_expected(tensors: &[(String, TensorData)]) {
        let expected = expected_json();
        let expected = expected.as_object().unwrap();
        assert_eq!(tensors.len(), expected.len());
        for (name, t) in tensors {
            let e = &expected[name];
            let dtype = match e["dtype"].as_str().unwrap() {
                "float32" => DType::F32,
                "float16" => DType::F16,
                "bfloat16" => DType::BF16,
                "float64" => DType::F64,
                "int64" => DType::I64,
                other => panic!("dtype {other}"),
            };
            assert_eq!(t.dtype, dtype, "{name}");
            let shape: Vec<usize> =
                e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(t.shape.dims, shape, "{name}");
            let values: Vec<f64> = e["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(t.to_f64_vec(), values, "{name}");
        }
    }

    #[test]
    fn mini_ema_equals_the_safetensors_weights() {
        let ckpt = read_pth(&golden("mini_ema.pth"), None).unwrap();
        assert_eq!(ckpt.entry.as_deref(), Some("ema"));
        assert_eq!(ckpt.keys, ["ema", "args", "epoch"]);
        let reference = read_safetensors(&shared_dir().join("golden/mini/weights.safetensors")).unwrap();
        assert_eq!(reference.len(), 185);
        assert_eq!(ckpt.tensors.len(), reference.len());
        for ((n0, t0), (n1, t1)) in ckpt.tensors.iter().zip(&reference) {
            assert_eq!(n0, n1);
            assert_eq!(t0.dtype, t1.dtype, "{n0}");
            assert_eq!(t0.shape, t1.shape, "{n0}");
            assert_eq!(t0.to_le_bytes(), t1.to_le_bytes(), "{n0}");
        }
    }

    #[test]
    fn tiny_views_match_the_expected_values_for_ema_and_model() {
        let path = golden("tiny_views.pth");
        let default = read_pth(&path, None).unwrap();
        assert_eq!(default.entry.as_deref(), Some("ema"));
        assert_eq!(default.keys, ["ema", "model", "args", "epoch", "optimizer"]);
        check_against_expected(&default.tensors);
        let model = read_pth(&path, Some("model")).unwrap();
        assert_eq!(model.entry.as_deref(), Some("model"));
        check_against_expected(&model.tensors);
        assert_eq!(model.tensors, default.tensors);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read_pth_bytes(&bytes, None).unwrap(), default);
    }

    #[test]
    fn entry_errors_list_the_available_entries() {
        let path = golden("tiny_views.pth");
        let err = read_pth(&path, Some("missing")).unwrap_err().to_string();
        assert!(err.contains("no entry 'missing'"), "{err}");
        assert!(err.contains("ema, model, args, epoch, optimizer"), "{err}");
        assert!(err.contains("tiny_views.pth"), "{err}");
        let err = read_pth(&path, Some("args")).unwrap_err().to_string();
        assert!(err.contains("argparse.Namespace object, not a state dict"), "{err}");
        let err = read_pth(&path, Some("epoch")).unwrap_err().to_string();
        assert!(err.contains("'epoch' is a int"), "{err}");
        let err = read_pth(&path, Some("optimizer")).unwrap_err().to_string();
        assert!(err.contains("tensor 'optimizer.state'"), "{err}");
    }

    #[test]
    fn truncated_garbage_and_text_files_are_errors() {
        let bytes = std::fs::read(golden("tiny_views.pth")).unwrap();
        let path = temp_path("bad.pth");
        for cut in [0, 10, 100, bytes.len() / 2, bytes.len() - 30, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = read_pth(&path, None).unwrap_err();
            assert!(matches!(err, Error::Format(_)), "cut {cut}: {err}");
        }
        std::fs::write(&path, (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
        let garbage = read_pth(&path, None).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(garbage.contains("not a zip file") && garbage.contains("bad.pth"), "{garbage}");
        let text = read_pth(&golden("tiny_views.expected.json"), None).unwrap_err().to_string();
        assert!(text.contains("not a zip file"), "{text}");
        assert!(matches!(read_pth(Path::new("/nonexistent/x.pth"), None), Err(Error::Io { .. })));
    }

    #[test]
    fn every_byte_flip_in_the_pickle_or_a_storage_is_safe() {
        let file = File::open(golden("tiny_views.pth")).unwrap();
        let mut zip = ZipArchive::new(file).unwrap();
        let mut files = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            files.push((f.name().to_string(), b));
        }
        let pkl = files.iter().position(|(n, _)| n.ends_with("data.pkl")).unwrap();
        for i in 0..files[pkl].1.len() {
            let mut files = files.clone();
            files[pkl].1[i] ^= 0x41;
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
            let _ = read_bytes(make_zip(&refs), None);
        }
        // A storage file one byte short.
        let mut short = files.clone();
        let s0 = short.iter().position(|(n, _)| n.ends_with("data/0")).unwrap();
        short[s0].1.pop();
        let refs: Vec<(&str, &[u8])> = short.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let err = read_bytes(make_zip(&refs), None).unwrap_err().to_string();
        assert!(err.contains("storage 0 has 95 bytes, but is declared with 96"), "{err}");
    }

    #[test]
    fn flat_state_dict_with_a_3d_permuted_view() {
        // Storage of 24 f32 = arange(24) viewed as (2,3,4) then permuted to (4,2,3): strides (1,12,4).
        let storage: Vec<u8> = (0..24).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let pkl = tensor_pickle("x", "FloatStorage", 24, 0, &[4, 2, 3], &[1, 12, 4]);
        let zip = make_zip(&[("arch/data.pkl", &pkl), ("arch/data/0", &storage), ("arch/byteorder", b"little")]);
        let ckpt = read_bytes(zip, None).unwrap();
        assert_eq!(ckpt.entry, None);
        assert_eq!(ckpt.keys, ["x"]);
        let t = &ckpt.tensors[0].1;
        assert_eq!(t.shape.dims, [4, 2, 3]);
        let mut want = Vec::new();
        for a in 0..4 {
            for b in 0..2 {
                for c in 0..3 {
                    want.push((a + 12 * b + 4 * c) as f32);
                }
            }
        }
        assert_eq!(t.to_f32_vec(), want);
    }

    #[test]
    fn big_endian_storages_are_swapped() {
        let storage: Vec<u8> = [1.5f32, -2.0, 4.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let pkl = tensor_pickle("x", "FloatStorage", 3, 1, &[2], &[1]);
        let zip = make_zip(&[("a/data.pkl", &pkl), ("a/data/0", &storage), ("a/byteorder", b"big")]);
        let t = &read_bytes(zip, None).unwrap().tensors[0].1;
        assert_eq!(t.to_f32_vec(), [-2.0, 4.0]);
    }

    #[test]
    fn malformed_archives_name_what_is_wrong() {
        let storage = [0u8; 10];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (make_zip(&[("a/other", b"x")]), "missing data.pkl"),
            (
                make_zip(&[("a/data.pkl", &tensor_pickle("x", "FloatStorage", 24, 0, &[4, 6], &[6, 1]))]),
                "missing storage file a/data/0",
            ),
            (
                make_zip(&[
                    ("a/data.pkl", &tensor_pickle("x", "FloatStorage", 24, 0, &[4, 6], &[6, 1])),
                    ("a/data/0", &storage),
                ]),
                "storage 0 has 10 bytes, but is declared with 96",
            ),
            (
                make_zip(&[
                    ("a/data.pkl", &tensor_pickle("x", "ByteStorage", 10, 0, &[4, 6], &[6, 1])),
                    ("a/data/0", &storage),
                ]),
                "storage 0 has 10 bytes, view needs 24",
            ),
            (
                make_zip(&[
                    ("a/data.pkl", &tensor_pickle("x", "ByteStorage", 10, 9, &[2], &[1])),
                    ("a/data/0", &storage),
                ]),
                "storage 0 has 10 bytes, view needs 11",
            ),
            (
                make_zip(&[
                    ("a/data.pkl", &tensor_pickle("x", "ShortStorage", 5, 0, &[5], &[1])),
                    ("a/data/0", &storage),
                ]),
                "unsupported storage type torch.ShortStorage",
            ),
            (
                make_zip(&[
                    ("a/data.pkl", &tensor_pickle("x", "ByteStorage", 10, 0, &[2], &[1, 1])),
                    ("a/data/0", &storage),
                ]),
                "differ in rank",
            ),
            (make_zip(&[("a/data.pkl", b"\x80\x02K\x01.")]), "holds a int, not a dict"),
            (make_zip(&[("a/data.pkl", b"\x80\x02}(K\x01K\x02u.")]), "top-level key is a int"),
            (make_zip(&[("a/data.pkl", b"\x80\x02}(\x8c\x01aK\x02u.")]), "choose an entry among: a"),
            (make_zip(&[("a/data.pkl", b"\x80\x02\x8c")]), "data.pkl: pickle: truncated"),
            (make_zip(&[("a/data.pkl", b"\x80\x02N."), ("a/byteorder", b"middle")]), "byteorder is \"middle\""),
        ];
        for (zip, want) in cases {
            let err = read_bytes(zip, None).unwrap_err();
            assert!(matches!(err, Error::Format(_)), "{err}");
            let err = err.to_string();
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
    }

    #[test]
    fn empty_and_zero_dim_tensors() {
        let storage = 7.0f32.to_le_bytes();
        let pkl = tensor_pickle("s", "FloatStorage", 1, 0, &[], &[]);
        let zip = make_zip(&[("a/data.pkl", &pkl), ("a/data/0", &storage)]);
        let t = &read_bytes(zip, None).unwrap().tensors[0].1;
        assert_eq!((t.shape.dims.len(), t.to_f32_vec()), (0, vec![7.0]));
        let pkl = tensor_pickle("e", "FloatStorage", 0, 0, &[0, 3], &[3, 1]);
        let zip = make_zip(&[("a/data.pkl", &pkl), ("a/data/0", b"")]);
        let t = &read_bytes(zip, None).unwrap().tensors[0].1;
        assert_eq!((t.shape.dims.clone(), t.numel()), (vec![0, 3], 0));
    }
}
