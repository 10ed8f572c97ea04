//! Reading and writing weights: safetensors and PyTorch `.pth` checkpoints (parsed as data, never executed).
//!
//! * [`read_weights`] reads either kind of file, recognised by its content;
//! * [`read_safetensors`] / [`write_safetensors`] handle safetensors files;
//! * [`read_pth`] reads a `torch.save` zip checkpoint through a small pickle interpreter that
//!   only builds data ([`pickle`]); nothing in the file is ever executed;
//! * [`write_atomic`] writes any file so that readers never see a partial one.
use crate::data::TensorData;
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub mod pickle;
pub mod pth;
pub mod safetensors;

pub use self::pth::{PthCheckpoint, read_pth, read_pth_bytes};
pub use self::safetensors::{read_safetensors, read_safetensors_bytes, safetensors_bytes, write_safetensors};

/// Reads the tensors of a weights file, sorted by name, whatever its kind.
///
/// The kind is taken from the content: a zip file (`PK` magic) is read as a PyTorch checkpoint
/// with [`read_pth`] (`entry` picks the top-level entry, default `ema`, then `model`, then a flat
/// state dict); anything else that starts like a safetensors file is read with
/// [`read_safetensors`], where `entry` must be `None`. Other files are an [`Error::Format`]
/// naming the path.
pub fn read_weights(path: &Path, entry: Option<&str>) -> Result<Vec<(String, TensorData)>> {
    let mut head = Vec::with_capacity(9);
    let file_len = std::fs::File::open(path)
        .and_then(|f| {
            let len = f.metadata()?.len();
            f.take(9).read_to_end(&mut head)?;
            Ok(len)
        })
        .map_err(|e| Error::io(path, e))?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(read_pth(path, entry)?.tensors);
    }
    // safetensors: a little-endian u64 header length that fits the file, then a JSON object.
    let header_fits = head
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .is_some_and(|b: [u8; 8]| u64::from_le_bytes(b) <= file_len.saturating_sub(8));
    if header_fits && head.get(8) == Some(&b'{') {
        if let Some(entry) = entry {
            return Err(Error::Format(format!(
                "{}: a safetensors file has no entries (asked for entry '{entry}')",
                path.display()
            )));
        }
        return read_safetensors(path);
    }
    Err(Error::Format(format!(
        "not a checkpoint: {} is neither a safetensors file nor a PyTorch zip checkpoint",
        path.display()
    )))
}

/// Writes `bytes` to `path` atomically: into `<path>.tmp-<pid>` in the same directory, fsync,
/// then rename over `path`. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // Make the rename itself durable where the platform allows syncing a directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The shared read-only reference directory (golden files, design notes) for tests.
///
/// It is `$KARL_SHARED` when that variable is set, else `<karl-core>/../../shared` (that is,
/// `shared/` next to the workspace checkout). Public so that other crates' tests can use it.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("KARL_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("karl-record-mod-{}-{name}", std::process::id()))
    }

    #[test]
    fn write_atomic_replaces_the_file() {
        let path = temp_path("atomic.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        std::fs::remove_file(&path).unwrap();
        let err = write_atomic(Path::new("/nonexistent-dir/karl/x.bin"), b"x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/karl/x.bin"), "{err}");
    }

    #[test]
    fn read_weights_dispatches_on_content() {
        let golden = shared_dir().join("golden");
        let st = read_weights(&golden.join("mini/weights.safetensors"), None).unwrap();
        assert_eq!(st.len(), 185);
        let pth = read_weights(&golden.join("pth/tiny_views.pth"), Some("model")).unwrap();
        assert_eq!(pth.len(), 8);
        let err = read_weights(&golden.join("mini/weights.safetensors"), Some("ema")).unwrap_err();
        assert!(err.to_string().contains("no entries"), "{err}");
    }

    #[test]
    fn read_weights_rejects_other_files() {
        let text = shared_dir().join("golden/pth/tiny_views.expected.json");
        let err = read_weights(&text, None).unwrap_err().to_string();
        assert!(err.contains("not a checkpoint") && err.contains("tiny_views.expected.json"), "{err}");
        let path = temp_path("garbage.bin");
        std::fs::write(&path, [0xffu8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
        let err = read_weights(&path, None).unwrap_err().to_string();
        std::fs::write(&path, b"").unwrap();
        let empty = read_weights(&path, None).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("not a checkpoint"), "{err}");
        assert!(empty.contains("not a checkpoint"), "{empty}");
    }
}
