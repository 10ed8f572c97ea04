//! What a dataset run reads: folders, file lists and WebDataset-style tar shards (with brace
//! ranges), turned into named work units, and the deterministic `--shard I/N` split of them.
use crate::image_io::is_image;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tar members larger than this are refused (reported as a failure) instead of read into memory.
pub const MAX_MEMBER_BYTES: u64 = 256 << 20;

/// One unit of work: it becomes one output shard named after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// An input tar shard, read as a stream.
    Tar {
        /// Output name (the tar's file stem).
        name: String,
        /// The tar file.
        path: PathBuf,
    },
    /// A chunk of loose image files, sorted by key.
    Files {
        /// Output name (`images-NNNNNN`).
        name: String,
        /// (key, file) pairs.
        files: Vec<(String, PathBuf)>,
    },
}

impl Unit {
    /// The output shard's name (without extension).
    pub fn name(&self) -> &str {
        match self {
            Unit::Tar { name, .. } | Unit::Files { name, .. } => name,
        }
    }

    /// Where the images come from, for the manifest.
    pub fn source(&self) -> String {
        match self {
            Unit::Tar { path, .. } => path.display().to_string(),
            Unit::Files { files, .. } => match (files.first(), files.last()) {
                (Some(a), Some(b)) => format!("{} images, keys {} … {}", files.len(), a.0, b.0),
                _ => String::from("no images"),
            },
        }
    }
}

/// `--shard I/N`: this process takes the units whose position (in name order) is I modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// This process's index, `0 ≤ index < count`.
    pub index: usize,
    /// Number of processes.
    pub count: usize,
}

impl std::str::FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("--shard takes I/N (e.g. 3/16), got {s:?}"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("--shard {s}: I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("--shard {s}: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("--shard {s}: need 0 ≤ I < N (I = {index}, N = {count})"));
        }
        Ok(ShardSpec { index, count })
    }
}

impl Default for ShardSpec {
    fn default() -> Self {
        ShardSpec { index: 0, count: 1 }
    }
}

/// Expands shell-style braces: numeric ranges keep their zero padding (`{000..012}`), and comma
/// lists (`{a,b}`); several groups multiply. Written here rather than taken from a crate: the
/// WebDataset convention is this one rule, and the crates found also implement shell features
/// (nesting, steps) that a file pattern should not silently accept.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close =
        open + pattern[open..].find('}').with_context(|| format!("{pattern}: unmatched '{{' at byte {open}"))?;
    let inner = &pattern[open + 1..close];
    if inner.contains('{') {
        bail!("{pattern}: nested braces are not supported");
    }
    let alternatives: Vec<String> = if let Some((a, b)) = inner.split_once("..") {
        let (lo, hi): (u64, u64) = match (a.parse(), b.parse()) {
            (Ok(lo), Ok(hi)) => (lo, hi),
            _ => bail!("{pattern}: {{{inner}}} is not a numeric range like {{000..099}}"),
        };
        if hi < lo || hi - lo >= 10_000_000 {
            bail!("{pattern}: range {{{inner}}} must go up and hold fewer than 10 million values");
        }
        let width = if a.len() > 1 && a.starts_with('0') { a.len() } else { 0 };
        (lo..=hi).map(|v| format!("{v:0width$}")).collect()
    } else {
        inner.split(',').map(str::to_string).collect()
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let tails = expand_braces(tail)?;
    let mut out = Vec::with_capacity(alternatives.len() * tails.len());
    for a in &alternatives {
        for t in &tails {
            out.push(format!("{head}{a}{t}"));
        }
    }
    Ok(out)
}

/// Whether a path names a tar shard.
pub fn is_tar(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("tar"))
}

/// The key of a loose image: its path relative to the folder it was found in (or as given),
/// without the extension, with `/` separators.
fn file_key(root: Option<&Path>, file: &Path) -> String {
    let rel = root.and_then(|r| file.strip_prefix(r).ok()).unwrap_or(file);
    let rel = rel.with_extension("");
    let s: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            _ => None,
        })
        .collect();
    s.join("/")
}

/// Collects the work units of a run: every tar shard is a unit of its own; loose images
/// (folders walked recursively, files given, lines of `list`) are sorted by key and cut into
/// chunks of `chunk` images. Units come back in name order; names must be unique.
pub fn collect_units(inputs: &[PathBuf], list: Option<&Path>, chunk: usize) -> Result<Vec<Unit>> {
    let mut tars: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut add_file = |key: String, path: PathBuf| -> Result<()> {
        if let Some(prev) = files.insert(key.clone(), path.clone()) {
            bail!("two inputs have the key {key:?}: {} and {}", prev.display(), path.display());
        }
        Ok(())
    };
    let mut given: Vec<PathBuf> = Vec::new();
    for p in inputs {
        for e in expand_braces(&p.to_string_lossy())? {
            given.push(PathBuf::from(e));
        }
    }
    if let Some(list) = list {
        let text = std::fs::read_to_string(list).with_context(|| format!("reading the list {}", list.display()))?;
        given.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(PathBuf::from));
    }
    for p in given {
        if p.is_dir() {
            for f in crate::image_io::collect_images(std::slice::from_ref(&p))? {
                add_file(file_key(Some(&p), &f), f)?;
            }
        } else if !p.exists() {
            bail!("{}: no such file or directory", p.display());
        } else if is_tar(&p) {
            let name = crate::image_io::file_stem(&p);
            if let Some(prev) = tars.insert(name.clone(), p.clone()) {
                bail!("two input shards are named {name}: {} and {}", prev.display(), p.display());
            }
        } else if is_image(&p) {
            add_file(file_key(None, &p), p)?;
        } else {
            bail!("{}: neither an image (png, jpg, jpeg, webp, bmp), a .tar shard nor a folder", p.display());
        }
    }
    let mut units: Vec<Unit> = tars.into_iter().map(|(name, path)| Unit::Tar { name, path }).collect();
    let files: Vec<(String, PathBuf)> = files.into_iter().collect();
    for (i, c) in files.chunks(chunk.max(1)).enumerate() {
        units.push(Unit::Files { name: format!("images-{i:06}"), files: c.to_vec() });
    }
    units.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some(w) = units.windows(2).find(|w| w[0].name() == w[1].name()) {
        bail!("an input shard is named {}, as a chunk of loose images: rename it", w[0].name());
    }
    Ok(units)
}

/// The units this process takes: positions ≡ I (mod N).
pub fn split(units: Vec<Unit>, spec: ShardSpec) -> Vec<Unit> {
    units.into_iter().enumerate().filter(|(i, _)| i % spec.count == spec.index).map(|(_, u)| u).collect()
}

/// One sample of a tar shard: its key and the bytes of its image member, or why there is none.
pub type Sample = (String, Result<Vec<u8>>);

/// Streams a WebDataset tar: members are grouped by key (the member path up to the first dot of
/// its file name), the image member chosen by extension; other members (labels, captions) are
/// skipped without reading. A key seen twice with an image, an oversized member, or a broken
/// tar ends as a failure sample; after a broken header the stream stops.
pub fn tar_samples(path: &Path, mut each: impl FnMut(Sample) -> Result<()>) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    let entries = archive.entries().with_context(|| format!("{}: not a tar file", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    for (n, entry) in entries.enumerate() {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                each((
                    format!("{}#{n}", crate::image_io::file_stem(path)),
                    Err(e).context("broken tar member header"),
                ))?;
                return Ok(());
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = match entry.path() {
            Ok(p) => p.to_string_lossy().to_string(),
            Err(e) => {
                each((format!("member {n}"), Err(e).context("unreadable member name")))?;
                continue;
            }
        };
        let (dir, base) = member.rsplit_once('/').map_or(("", member.as_str()), |(d, b)| (d, b));
        let Some((stem, ext)) = base.split_once('.') else { continue };
        let last_ext = ext.rsplit('.').next().unwrap_or(ext);
        if !is_image(Path::new(&format!("x.{last_ext}"))) {
            continue;
        }
        let key = if dir.is_empty() { stem.to_string() } else { format!("{dir}/{stem}") };
        let size = entry.size();
        let bytes = if !seen.insert(key.clone()) {
            Err(anyhow::anyhow!("a second image member ({member}) for this key"))
        } else if size > MAX_MEMBER_BYTES {
            Err(anyhow::anyhow!("member {member} is {size} bytes, above the limit of {MAX_MEMBER_BYTES}"))
        } else {
            let mut b = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut entry, &mut b)
                .map(|_| b)
                .with_context(|| format!("reading member {member}"))
        };
        each((key, bytes))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_ranges_with_padding_and_lists() {
        assert_eq!(expand_braces("a-{008..011}.tar").unwrap(), ["a-008.tar", "a-009.tar", "a-010.tar", "a-011.tar"]);
        assert_eq!(expand_braces("{x,y}/{1..2}").unwrap(), ["x/1", "x/2", "y/1", "y/2"]);
        assert_eq!(expand_braces("plain.tar").unwrap(), ["plain.tar"]);
        assert!(expand_braces("a{1..").is_err());
        assert!(expand_braces("a{3..1}").is_err());
        assert!(expand_braces("a{{1,2}}").is_err());
    }

    #[test]
    fn shard_spec_parses_and_checks() {
        assert_eq!("3/16".parse::<ShardSpec>().unwrap(), ShardSpec { index: 3, count: 16 });
        for bad in ["16/16", "1", "a/2", "0/0"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn split_partitions_every_unit_exactly_once() {
        let units: Vec<Unit> =
            (0..23).map(|i| Unit::Files { name: format!("images-{i:06}"), files: Vec::new() }).collect();
        for n in 1..=7 {
            let mut all: Vec<String> = (0..n)
                .flat_map(|i| split(units.clone(), ShardSpec { index: i, count: n }))
                .map(|u| u.name().to_string())
                .collect();
            all.sort();
            assert_eq!(all, units.iter().map(|u| u.name().to_string()).collect::<Vec<_>>(), "N = {n}");
        }
    }
}
