//! Fuzz body of the `.pth` reader: the zip container for zip files, the pickle reader alone
//! for anything else (a pickle inside a zip is behind the zip's CRC, which mutations rarely
//! keep valid).
use karl_core::record::{pickle, read_pth_bytes};

/// Reads `data` as a checkpoint (default entry, then `model`) or, when it is no zip, as a pickle.
pub fn pth(data: &[u8]) {
    if data.starts_with(b"PK") {
        let _ = read_pth_bytes(data, None);
        let _ = read_pth_bytes(data, Some("model"));
    } else {
        let _ = pickle::load(data);
    }
}
