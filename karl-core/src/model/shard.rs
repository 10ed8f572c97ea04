//! Token shards: many images' token files in one file (`.karlshard`), each record CRC-checked,
//! with an index at the end so one image is read without reading the others.
//!
//! Layout (integers little-endian):
//!
//! | part | bytes |
//! |---|---|
//! | header | magic `KARLSHD\0`, format version (u16), 6 zero bytes |
//! | records, one per image | CRC-32 of the rest of the record (u32), length of the rest (u32), key length (u16), key (UTF-8), the image's `.karl` token file (single or tiled) |
//! | index | a container like the `.karl` one (magic `KARLSHX\0`): model id, source, for each image its key, offset, length, KC and tile count, and the failures (key, reason) |
//! | footer | index offset (u64), index length (u32), `KSHE` |
//!
//! The builder produces these bytes piece by piece (no I/O, so the format stays `no_std`); the
//! caller streams them to a temporary file and renames it when complete. Readers check the
//! footer, the index and every record they read against each other, so a truncated, corrupt or
//! foreign file is an error, never a wrong image.
use super::tiles::TokenFile;
use super::tokens::{container_from_bytes, container_to_bytes};
use crate::error::{Error, Result};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// File magic.
pub const SHARD_MAGIC: [u8; 8] = *b"KARLSHD\0";
/// Magic of the index container.
pub const INDEX_MAGIC: [u8; 8] = *b"KARLSHX\0";
/// Current format version.
pub const SHARD_FORMAT_VERSION: u16 = 1;
/// Magic closing the footer.
pub const FOOTER_MAGIC: [u8; 4] = *b"KSHE";
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;
/// Footer length in bytes.
pub const FOOTER_LEN: usize = 16;
/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 4096;
/// Fixed bytes of a record before its key: CRC, length, key length.
const RECORD_HEAD: usize = 10;

/// Where one image's record lies, and what the index tells about it without reading it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The image's key (unique in the shard).
    pub key: String,
    /// Offset of the record from the start of the file.
    pub offset: u64,
    /// Length of the whole record in bytes.
    pub len: u32,
    /// KC: tokens kept (summed over tiles for a tiled image).
    pub kc: u32,
    /// Tiles (1 for an image at the model's size).
    pub tiles: u32,
}

/// An input image that produced no record, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFailure {
    /// The image's key.
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

/// The index at the end of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardIndex {
    /// The model every record was made with.
    pub model_id: String,
    /// What the shard was made from (an input shard's name, or a chunk of loose images).
    pub source: String,
    /// One entry per record, in file order.
    pub entries: Vec<ShardEntry>,
    /// Inputs that failed (corrupt images, ...), in input order.
    pub failures: Vec<ShardFailure>,
}

/// The shard header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&SHARD_MAGIC);
    h[8..10].copy_from_slice(&SHARD_FORMAT_VERSION.to_le_bytes());
    h
}

/// Checks a shard's first [`HEADER_LEN`] bytes.
pub fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < HEADER_LEN || bytes[..8] != SHARD_MAGIC {
        return Err(Error::Format(String::from("not a KARL token shard (bad magic)")));
    }
    let v = u16::from_le_bytes([bytes[8], bytes[9]]);
    if v != SHARD_FORMAT_VERSION {
        return Err(Error::Format(format!(
            "token shard format version {v} is not supported (this build reads {SHARD_FORMAT_VERSION})"
        )));
    }
    if bytes[10..HEADER_LEN].iter().any(|&b| b != 0) {
        return Err(Error::Format(String::from("token shard header has non-zero reserved bytes")));
    }
    Ok(())
}

/// Builds a shard's bytes: the [`header`], then [`ShardBuilder::record`] per image in order,
/// then [`ShardBuilder::finish`] (index + footer).
#[derive(Debug)]
pub struct ShardBuilder {
    offset: u64,
    index: ShardIndex,
    keys: BTreeMap<String, usize>,
}

impl ShardBuilder {
    /// A builder for records of model `model_id`, made from `source`.
    pub fn new(model_id: &str, source: &str) -> Self {
        let index = ShardIndex {
            model_id: model_id.to_string(),
            source: source.to_string(),
            entries: Vec::new(),
            failures: Vec::new(),
        };
        ShardBuilder { offset: HEADER_LEN as u64, index, keys: BTreeMap::new() }
    }

    /// The record of one image, to be written right after the previous one. Refuses a key that
    /// is empty, too long or already in the shard, and tokens of another model.
    pub fn record(&mut self, key: &str, file: &TokenFile) -> Result<Vec<u8>> {
        self.check_key(key)?;
        if file.model_id() != self.index.model_id {
            return Err(Error::InvalidArgument(format!(
                "{key}: tokens of model {} in a shard of model {}",
                file.model_id(),
                self.index.model_id
            )));
        }
        let body = file.to_bytes();
        let rest = 2 + key.len() + body.len();
        let len = u32::try_from(8 + rest)
            .map_err(|_| Error::InvalidArgument(format!("{key}: a record of {rest} bytes is too large")))?;
        let mut out = Vec::with_capacity(RECORD_HEAD + key.len() + body.len());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(rest as u32).to_le_bytes());
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len(), len as usize);
        self.keys.insert(key.to_string(), self.index.entries.len());
        self.index.entries.push(ShardEntry {
            key: key.to_string(),
            offset: self.offset,
            len,
            kc: file.kc() as u32,
            tiles: file.tile_count() as u32,
        });
        self.offset += len as u64;
        Ok(out)
    }

    /// Notes an input that produced no record.
    pub fn failure(&mut self, key: &str, reason: &str) {
        self.index.failures.push(ShardFailure { key: key.to_string(), reason: reason.to_string() });
    }

    /// Records written so far.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// The index so far.
    pub fn index(&self) -> &ShardIndex {
        &self.index
    }

    /// The index and footer that close the shard.
    pub fn finish(self) -> Vec<u8> {
        let index = container_to_bytes(INDEX_MAGIC, SHARD_FORMAT_VERSION, &self.index);
        let mut out = index;
        let len = out.len() as u32;
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&FOOTER_MAGIC);
        out
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "a shard key must be 1 to {MAX_KEY_LEN} bytes, got {}",
                key.len()
            )));
        }
        if self.keys.contains_key(key) {
            return Err(Error::InvalidArgument(format!("duplicate key {key} in one shard")));
        }
        Ok(())
    }
}

/// Reads the footer (the file's last [`FOOTER_LEN`] bytes) of a `file_len`-byte shard: the
/// index's offset and length, checked to lie inside the file after the header.
pub fn parse_footer(footer: &[u8], file_len: u64) -> Result<(u64, usize)> {
    if footer.len() != FOOTER_LEN || file_len < (HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(Error::Format(format!(
            "token shard of {file_len} bytes is shorter than its {} bytes of header and footer",
            HEADER_LEN + FOOTER_LEN
        )));
    }
    if footer[12..] != FOOTER_MAGIC {
        return Err(Error::Format(String::from("token shard footer is missing (truncated file?)")));
    }
    let offset = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(footer[8..12].try_into().expect("4 bytes")) as u64;
    if offset < HEADER_LEN as u64 || offset.checked_add(len) != Some(file_len - FOOTER_LEN as u64) {
        return Err(Error::Format(format!(
            "token shard footer places a {len}-byte index at {offset} in a {file_len}-byte file"
        )));
    }
    Ok((offset, len as usize))
}

impl ShardIndex {
    /// Parses the index container that starts at `offset`, checking that the records it lists
    /// follow each other from the header up to the index, with unique, valid keys.
    pub fn from_bytes(bytes: &[u8], offset: u64) -> Result<Self> {
        let index: ShardIndex = container_from_bytes(bytes, INDEX_MAGIC, SHARD_FORMAT_VERSION, "token shard index")?;
        let mut at = HEADER_LEN as u64;
        let mut keys = BTreeMap::new();
        for (i, e) in index.entries.iter().enumerate() {
            if e.offset != at || (e.len as usize) < RECORD_HEAD + e.key.len() {
                return Err(Error::Format(format!(
                    "token shard index entry {i} ({}) places {} bytes at {}, expected a record at {at}",
                    e.key, e.len, e.offset
                )));
            }
            if e.key.is_empty() || e.key.len() > MAX_KEY_LEN || keys.insert(e.key.as_str(), i).is_some() {
                return Err(Error::Format(format!("token shard index entry {i} has an empty, long or repeated key")));
            }
            at = e.offset + e.len as u64;
        }
        if at != offset {
            return Err(Error::Format(format!("token shard records end at {at} but the index starts at {offset}")));
        }
        Ok(index)
    }

    /// The position of `key` in [`entries`](Self::entries).
    pub fn find(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    /// Total images: records plus failures.
    pub fn inputs(&self) -> usize {
        self.entries.len() + self.failures.len()
    }
}

/// Parses one record (the `entry.len` bytes at `entry.offset`) and checks it against its index
/// entry: CRC, key, model, KC.
pub fn read_record(bytes: &[u8], entry: &ShardEntry, model_id: &str, max_pixels: u64) -> Result<TokenFile> {
    let bad = |what: &str| Err(Error::Format(format!("token shard record {}: {what}", entry.key)));
    if bytes.len() != entry.len as usize || bytes.len() < RECORD_HEAD {
        return bad("truncated");
    }
    let crc = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let rest = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if rest + 8 != bytes.len() {
        return bad("length does not match the index");
    }
    if crc32fast::hash(&bytes[4..]) != crc {
        return bad("checksum mismatch (corrupted)");
    }
    let key_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let Some(key) = bytes.get(RECORD_HEAD..RECORD_HEAD + key_len) else {
        return bad("key runs past the record");
    };
    if key != entry.key.as_bytes() {
        return bad("key does not match the index");
    }
    let file = TokenFile::from_bytes(&bytes[RECORD_HEAD + key_len..], max_pixels)?;
    if file.model_id() != model_id {
        return bad("tokens of another model than the shard's");
    }
    if file.kc() as u64 != entry.kc as u64 || file.tile_count() as u64 != entry.tiles as u64 {
        return bad("KC or tile count does not match the index");
    }
    Ok(file)
}

/// A whole shard in memory, checked: header, footer, index and every record.
pub fn parse_all(bytes: &[u8], max_pixels: u64) -> Result<(ShardIndex, Vec<TokenFile>)> {
    check_header(bytes)?;
    let n = bytes.len() as u64;
    let (offset, len) = parse_footer(&bytes[bytes.len().saturating_sub(FOOTER_LEN)..], n)?;
    let index = ShardIndex::from_bytes(&bytes[offset as usize..offset as usize + len], offset)?;
    let mut files = Vec::with_capacity(index.entries.len());
    for e in &index.entries {
        let at = e.offset as usize;
        files.push(read_record(&bytes[at..at + e.len as usize], e, &index.model_id, max_pixels)?);
    }
    Ok((index, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tokens::{TokenCodes, Tokens};

    fn tokens(model: &str, kc: u16) -> TokenFile {
        TokenFile::Single(Tokens {
            model_id: model.to_string(),
            budget: 32,
            quality: 0.05,
            quality_bin: 3,
            fixed: false,
            image_size: [64, 64],
            positions: (0..kc).collect(),
            codes: TokenCodes::Quantized((0..kc).map(|i| i * 7).collect()),
        })
    }

    fn shard(keys: &[(&str, u16)]) -> Vec<u8> {
        let mut b = ShardBuilder::new("m", "src");
        let mut out = header().to_vec();
        for (k, kc) in keys {
            out.extend(b.record(k, &tokens("m", *kc)).unwrap());
        }
        b.failure("bad", "not an image");
        out.extend(b.finish());
        out
    }

    #[test]
    fn round_trip_and_random_access() {
        let bytes = shard(&[("a", 3), ("dir/b", 0), ("c", 17)]);
        let (index, files) = parse_all(&bytes, 1 << 26).unwrap();
        assert_eq!(index.entries.iter().map(|e| e.kc).collect::<Vec<_>>(), [3, 0, 17]);
        assert_eq!(index.failures, [ShardFailure { key: "bad".into(), reason: "not an image".into() }]);
        assert_eq!(files[2], tokens("m", 17));
        let e = &index.entries[index.find("dir/b").unwrap()];
        let one = read_record(&bytes[e.offset as usize..(e.offset + e.len as u64) as usize], e, "m", 1 << 26).unwrap();
        assert_eq!(one, tokens("m", 0));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let bytes = shard(&[("a", 3), ("b", 5)]);
        for n in 0..bytes.len() {
            assert!(parse_all(&bytes[..n], 1 << 26).is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(parse_all(&b, 1 << 26).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn builder_refuses_duplicate_keys_and_foreign_models() {
        let mut b = ShardBuilder::new("m", "src");
        b.record("a", &tokens("m", 1)).unwrap();
        assert!(b.record("a", &tokens("m", 1)).unwrap_err().to_string().contains("duplicate key a"));
        assert!(b.record("x", &tokens("other", 1)).unwrap_err().to_string().contains("model other"));
        assert!(b.record("", &tokens("m", 1)).is_err());
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn an_index_that_disagrees_with_its_records_is_refused() {
        let bytes = shard(&[("a", 3)]);
        let (mut index, _) = parse_all(&bytes, 1 << 26).unwrap();
        let offset = index.entries.iter().map(|e| e.offset + e.len as u64).max().unwrap();
        for (kc, tiles) in [(4, 1), (3, 2)] {
            index.entries[0].kc = kc;
            index.entries[0].tiles = tiles;
            let mut forged = bytes[..offset as usize].to_vec();
            let ix = container_to_bytes(INDEX_MAGIC, SHARD_FORMAT_VERSION, &index);
            forged.extend_from_slice(&ix);
            forged.extend_from_slice(&offset.to_le_bytes());
            forged.extend_from_slice(&(ix.len() as u32).to_le_bytes());
            forged.extend_from_slice(&FOOTER_MAGIC);
            let e = parse_all(&forged, 1 << 26).unwrap_err().to_string();
            assert!(e.contains("KC or tile count does not match the index"), "{e}");
        }
    }

    #[test]
    fn empty_shard_round_trips() {
        let mut out = header().to_vec();
        out.extend(ShardBuilder::new("m", "s").finish());
        let (index, files) = parse_all(&out, 1 << 26).unwrap();
        assert!(index.entries.is_empty() && files.is_empty());
    }
}
