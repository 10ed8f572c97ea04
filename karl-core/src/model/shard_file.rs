//! Token shard files on disk: open reads only the footer and the index; each image's record is
//! read on its own by seeking; `verify` reads and checks every record. The format is in
//! [`shard`](super::shard).
use super::shard::{FOOTER_LEN, HEADER_LEN, ShardEntry, ShardIndex, check_header, parse_footer, read_record};
use super::tiles::TokenFile;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// An open token shard.
#[derive(Debug)]
pub struct ShardFile {
    file: File,
    path: PathBuf,
    index: ShardIndex,
    max_pixels: u64,
}

impl ShardFile {
    /// Opens a shard, reading its header, footer and index; tiled records whose grid exceeds
    /// `max_pixels` are refused when read.
    pub fn open(path: &Path, max_pixels: u64) -> Result<Self> {
        let io = |e| Error::io(path, e);
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let ctx = |e: Error| match e {
            Error::Format(m) => Error::Format(format!("{}: {m}", path.display())),
            e => e,
        };
        let mut head = [0u8; HEADER_LEN];
        let got = read_at(&mut file, 0, &mut head).map_err(io)?;
        check_header(&head[..got]).map_err(ctx)?;
        let mut foot = [0u8; FOOTER_LEN];
        let at = len.saturating_sub(FOOTER_LEN as u64);
        let got = read_at(&mut file, at, &mut foot).map_err(io)?;
        let (offset, index_len) = parse_footer(&foot[..got], len).map_err(ctx)?;
        let mut bytes = vec![0u8; index_len];
        read_exact_at(&mut file, offset, &mut bytes).map_err(io)?;
        let index = ShardIndex::from_bytes(&bytes, offset).map_err(ctx)?;
        Ok(ShardFile { file, path: path.to_path_buf(), index, max_pixels })
    }

    /// The index: keys, KC per image, failures.
    pub fn index(&self) -> &ShardIndex {
        &self.index
    }

    /// Records in the shard.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether the shard holds no record.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// Reads the `i`-th record.
    pub fn get(&mut self, i: usize) -> Result<TokenFile> {
        let Some(e) = self.index.entries.get(i).cloned() else {
            return Err(Error::InvalidArgument(format!(
                "{}: record {i} asked, the shard holds {}",
                self.path.display(),
                self.len()
            )));
        };
        self.read(&e)
    }

    /// Reads the record of `key`.
    pub fn get_key(&mut self, key: &str) -> Result<TokenFile> {
        let i = self.index.find(key).ok_or_else(|| {
            Error::InvalidArgument(format!("{}: no image with key {key:?} in this shard", self.path.display()))
        })?;
        self.get(i)
    }

    /// Reads and checks every record.
    pub fn verify(&mut self) -> Result<()> {
        for e in self.index.entries.clone() {
            self.read(&e)?;
        }
        Ok(())
    }

    fn read(&mut self, e: &ShardEntry) -> Result<TokenFile> {
        let mut bytes = vec![0u8; e.len as usize];
        read_exact_at(&mut self.file, e.offset, &mut bytes).map_err(|err| Error::io(&self.path, err))?;
        read_record(&bytes, e, &self.index.model_id, self.max_pixels).map_err(|err| match err {
            Error::Format(m) => Error::Format(format!("{}: {m}", self.path.display())),
            err => err,
        })
    }
}

/// Whether a file starts like a token shard (its magic), without parsing it.
pub fn is_shard(path: &Path) -> bool {
    let mut head = [0u8; 8];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == super::shard::SHARD_MAGIC
}

fn read_at(f: &mut File, at: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    f.seek(SeekFrom::Start(at))?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn read_exact_at(f: &mut File, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}
