//! Fuzz body of the token shard reader (`.karlshard`): whatever parses (header, footer, index,
//! every record) is rebuilt by the shard builder to the same bytes, and the file reader agrees
//! with the in-memory one.
use karl_core::model::shard::{FOOTER_LEN, HEADER_LEN, ShardBuilder, header, parse_all};
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
pub use karl_ffi::fuzzing::with_valid_container;

/// The shard with the CRC of every record it can walk and the index container's CRC
/// recomputed, so that mutations reach the parsers behind the checksums.
pub fn with_valid_checksums(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return b;
    }
    let foot = b.len() - FOOTER_LEN;
    let index_at = usize::try_from(u64::from_le_bytes(b[foot..foot + 8].try_into().expect("8 bytes")))
        .unwrap_or(usize::MAX)
        .min(foot);
    let mut at = HEADER_LEN;
    while at + 8 <= index_at {
        let rest = u32::from_le_bytes(b[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        let Some(end) = (at + 8).checked_add(rest).filter(|&e| e <= index_at) else { break };
        let crc = crc32fast::hash(&b[at + 4..end]);
        b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    let fixed = with_valid_container(&b[index_at..foot]);
    b[index_at..foot].copy_from_slice(&fixed);
    b
}

/// Token shards, as given and with valid checksums.
pub fn shard(data: &[u8]) {
    for bytes in [data.to_vec(), with_valid_checksums(data)] {
        let Ok((index, files)) = parse_all(&bytes, DEFAULT_MAX_PIXELS) else { continue };
        assert_eq!(files.len(), index.entries.len());
        let mut b = ShardBuilder::new(&index.model_id, &index.source);
        let mut again = header().to_vec();
        for (e, f) in index.entries.iter().zip(&files) {
            assert_eq!(e.kc as usize, f.kc(), "index KC differs from the record's");
            again.extend(b.record(&e.key, f).expect("a record that parsed is accepted by the builder"));
        }
        for x in &index.failures {
            b.failure(&x.key, &x.reason);
        }
        again.extend(b.finish());
        assert!(again == bytes, "a shard that parses does not rebuild to the same bytes");
    }
}
