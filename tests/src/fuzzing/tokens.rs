//! Fuzz bodies of the `.karl` token file readers: whatever parses re-encodes to the same bytes.
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
use karl_core::model::{TokenFile, Tokens};
pub use karl_ffi::fuzzing::with_valid_container;

/// Single-image token files, as given and with a valid checksum.
pub fn token_file(data: &[u8]) {
    for bytes in [data.to_vec(), with_valid_container(data)] {
        if let Ok(t) = Tokens::from_bytes(&bytes) {
            assert!(t.to_bytes() == bytes, "a token file that parses does not re-encode to the same bytes");
        }
    }
}

/// Either container (chosen by the magic), as given and with a valid checksum.
pub fn tiled_token_file(data: &[u8]) {
    for bytes in [data.to_vec(), with_valid_container(data)] {
        let again = match TokenFile::from_bytes(&bytes, DEFAULT_MAX_PIXELS) {
            Ok(TokenFile::Single(t)) => t.to_bytes(),
            Ok(TokenFile::Tiled(t)) => {
                assert_eq!(t.kc(), t.tile_kc().iter().sum::<usize>());
                t.to_bytes()
            }
            Err(_) => continue,
        };
        assert!(again == bytes, "a token file that parses does not re-encode to the same bytes");
    }
}
