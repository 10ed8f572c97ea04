//! The manifest of a dataset run (JSON, one per `--shard I/N` process): what was read, which
//! shards were written or found complete, every failure with its reason, KC statistics, so a
//! user can check that a large job is complete.
use karl_core::model::shard::ShardIndex;
use serde::Serialize;
use std::path::Path;

/// KC statistics over images, with a histogram of at most 16 equal-width bins.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KcStats {
    /// Images counted.
    pub images: usize,
    /// Mean KC.
    pub mean: f64,
    /// Smallest KC.
    pub min: u32,
    /// 10th percentile (nearest rank).
    pub p10: u32,
    /// Median (nearest rank).
    pub p50: u32,
    /// 90th percentile (nearest rank).
    pub p90: u32,
    /// Largest KC.
    pub max: u32,
    /// Bins `[from, to]` (inclusive) with their image counts.
    pub histogram: Vec<Bin>,
}

/// One histogram bin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bin {
    /// Smallest KC in the bin.
    pub from: u32,
    /// Largest KC in the bin.
    pub to: u32,
    /// Images in the bin.
    pub count: usize,
}

impl KcStats {
    /// Statistics of the given counts.
    pub fn of(kc: &[u32]) -> Self {
        if kc.is_empty() {
            return KcStats::default();
        }
        let mut s = kc.to_vec();
        s.sort_unstable();
        let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        let (min, max) = (s[0], s[s.len() - 1]);
        let width = (max - min) / 16 + 1;
        let mut histogram: Vec<Bin> = Vec::new();
        for &k in &s {
            let from = min + (k - min) / width * width;
            match histogram.last_mut() {
                Some(b) if b.from == from => b.count += 1,
                _ => histogram.push(Bin { from, to: from + width - 1, count: 1 }),
            }
        }
        KcStats {
            images: s.len(),
            mean: s.iter().map(|&k| k as f64).sum::<f64>() / s.len() as f64,
            min,
            p10: rank(0.1),
            p50: rank(0.5),
            p90: rank(0.9),
            max,
            histogram,
        }
    }

    /// The histogram as text lines (`from–to  count  bar`).
    pub fn render(&self) -> Vec<String> {
        let top = self.histogram.iter().map(|b| b.count).max().unwrap_or(1).max(1);
        self.histogram
            .iter()
            .map(|b| format!("{:>5}–{:<5} {:>8}  {}", b.from, b.to, b.count, "#".repeat((b.count * 40).div_ceil(top))))
            .collect()
    }
}

/// One output shard of the run.
#[derive(Clone, Debug, Serialize)]
pub struct ShardReport {
    /// Output file name.
    pub output: String,
    /// What it was made from.
    pub source: String,
    /// `written` by this run, or `existing` (found complete and verified, skipped).
    pub status: &'static str,
    /// Records (images tokenized).
    pub images: usize,
    /// Inputs that failed.
    pub failures: usize,
}

/// A failed input.
#[derive(Clone, Debug, Serialize)]
pub struct FailureReport {
    /// The output shard it belongs to.
    pub shard: String,
    /// The image's key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// The manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// `karl` version that wrote it.
    pub karl_version: &'static str,
    /// Token shard format version.
    pub shard_format_version: u16,
    /// Model id (name + weight fingerprint) of every record.
    pub model_id: String,
    /// Encoding options.
    pub options: serde_json::Value,
    /// This process's part: `{index, count}` of `--shard I/N`.
    pub shard: serde_json::Value,
    /// Inputs as given (after brace expansion) and the list file, if any.
    pub inputs: Vec<String>,
    /// Work units over all N processes, and those of this process.
    pub units_total: usize,
    /// Units of this process.
    pub units_mine: usize,
    /// Whether every unit of this process has its shard.
    pub complete: bool,
    /// Shards of this process.
    pub shards: Vec<ShardReport>,
    /// Images tokenized.
    pub images: usize,
    /// Inputs that failed, with reasons.
    pub failures: Vec<FailureReport>,
    /// KC over the tokenized images (per image; summed over tiles for tiled images).
    pub kc: KcStats,
    /// Wall time of this run, seconds.
    pub seconds: f64,
    /// Images tokenized by this run (not counting existing shards) per second.
    pub images_per_second: f64,
    /// Of `seconds`, the time spent in the encoder: the rest is reading, decoding and
    /// preprocessing images and writing shards.
    pub encode_seconds: f64,
    #[serde(skip)]
    kc_values: Vec<u32>,
    #[serde(skip)]
    fresh_images: usize,
}

impl Manifest {
    /// An empty manifest for a run.
    pub fn new(
        model_id: &str,
        options: serde_json::Value,
        shard: serde_json::Value,
        inputs: Vec<String>,
        units_total: usize,
        units_mine: usize,
    ) -> Self {
        Manifest {
            karl_version: env!("CARGO_PKG_VERSION"),
            shard_format_version: karl_core::model::shard::SHARD_FORMAT_VERSION,
            model_id: model_id.to_string(),
            options,
            shard,
            inputs,
            units_total,
            units_mine,
            complete: units_mine == 0,
            shards: Vec::new(),
            images: 0,
            failures: Vec::new(),
            kc: KcStats::default(),
            seconds: 0.0,
            images_per_second: 0.0,
            encode_seconds: 0.0,
            kc_values: Vec::new(),
            fresh_images: 0,
        }
    }

    /// Adds a finished shard (`written` now, or `existing`).
    pub fn add(&mut self, output: &str, index: &ShardIndex, status: &'static str, seconds: f64) {
        self.shards.push(ShardReport {
            output: output.to_string(),
            source: index.source.clone(),
            status,
            images: index.entries.len(),
            failures: index.failures.len(),
        });
        self.images += index.entries.len();
        if status == "written" {
            self.fresh_images += index.entries.len();
        }
        self.failures.extend(index.failures.iter().map(|f| FailureReport {
            shard: output.to_string(),
            key: f.key.clone(),
            reason: f.reason.clone(),
        }));
        self.kc_values.extend(index.entries.iter().map(|e| e.kc));
        self.kc = KcStats::of(&self.kc_values);
        self.complete = self.shards.len() == self.units_mine;
        self.seconds = seconds;
        self.images_per_second = if seconds > 0.0 { self.fresh_images as f64 / seconds } else { 0.0 };
    }

    /// Writes the manifest as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        karl_core::record::write_atomic(path, text.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_histogram() {
        let s = KcStats::of(&[4, 1, 9, 9, 2, 40]);
        assert_eq!((s.images, s.min, s.max, s.p50, s.p10, s.p90), (6, 1, 40, 4, 1, 40));
        assert_eq!(s.histogram.iter().map(|b| b.count).sum::<usize>(), 6);
        assert!(s.histogram.iter().all(|b| b.to - b.from + 1 == 3));
        assert_eq!(KcStats::of(&[]).images, 0);
        assert_eq!(KcStats::of(&[7, 7]).histogram, [Bin { from: 7, to: 7, count: 2 }]);
    }
}
