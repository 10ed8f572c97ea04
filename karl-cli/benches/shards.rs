//! Dataset-scale tokenization throughput: 2,000 synthetic 64×64 images (random overlapping
//! discs and boxes, a dead-leaves-like mix of flat and busy images) in 4 WebDataset tar shards,
//! tokenized with the built-in model on the CPU by `karl tokenize` into token shards, against
//! tokenizing the same images already decoded in memory (same model, same batch of 8, one
//! process), alternating A B A B. Prints images/s of both and the shard I/O overhead (tar
//! reading, PNG decoding, preprocessing, shard writing, process start and model load).
//!
//! cargo bench -p karl-cli --bench shards [-- IMAGES ROUNDS]
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::EncodeOptions;
use karl_core::rng::Rng;
use std::process::Command;
use std::time::Instant;

const SIZE: u32 = 64;

/// Image `i`: a background and 0–40 discs or boxes of random colour and size.
fn image(i: u64) -> image::RgbImage {
    let mut r = Rng::new(i);
    let bg = [r.below(256) as u8, r.below(256) as u8, r.below(256) as u8];
    let mut img = image::RgbImage::from_pixel(SIZE, SIZE, image::Rgb(bg));
    for _ in 0..r.below(41) {
        let (cx, cy) = (r.below(SIZE as usize) as i64, r.below(SIZE as usize) as i64);
        let rad = 2 + r.below(20) as i64;
        let disc = r.below(2) == 0;
        let c = image::Rgb([r.below(256) as u8, r.below(256) as u8, r.below(256) as u8]);
        for y in (cy - rad).max(0)..(cy + rad).min(SIZE as i64) {
            for x in (cx - rad).max(0)..(cx + rad).min(SIZE as i64) {
                if !disc || (x - cx).pow(2) + (y - cy).pow(2) <= rad * rad {
                    img.put_pixel(x as u32, y as u32, c);
                }
            }
        }
    }
    img
}

fn png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let batch = 8usize;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let shards = 4u64;
    let mut decoded: Vec<Vec<f32>> = Vec::with_capacity(n as usize);
    let mut bytes_total = 0usize;
    for s in 0..shards {
        let mut b = tar::Builder::new(std::fs::File::create(dir.join(format!("bench-{s}.tar"))).unwrap());
        for i in (s * n / shards)..((s + 1) * n / shards) {
            let img = image(i);
            let data = png(&img);
            bytes_total += data.len();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("{i:06}.png"), data.as_slice()).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("{i:06}.cls"), &b"0"[..]).unwrap();
            let rgb = karl_core::preprocess::Rgb8::new(img.as_raw(), SIZE as usize, SIZE as usize, SIZE as usize * 3)
                .unwrap();
            decoded.push(rgb.to_chw());
        }
        b.finish().unwrap();
    }
    println!(
        "{n} images of {SIZE}×{SIZE} in {shards} tar shards ({:.1} MB of PNG), built-in model, CPU, batch {batch}",
        bytes_total as f64 / 1e6
    );

    let tok = karl_core::model::builtin::builtin_tokenizer::<Cpu<f32>>(&CpuDevice).unwrap();
    let opts = EncodeOptions { budget: 256.min(tok.model.config.max_latent_tokens), quality: 0.05, fixed: false };
    let s = SIZE as usize;
    let from_memory = || {
        let t0 = Instant::now();
        let mut kc = 0usize;
        for chunk in decoded.chunks(batch) {
            let x: Vec<f32> = chunk.iter().flatten().copied().collect();
            let xt = karl_core::Tensor::<Cpu<f32>, 4>::from_f32(x, [chunk.len(), 3, s, s], &CpuDevice).unwrap();
            kc += tok.encode(&xt, opts).unwrap().iter().map(|t| t.kc()).sum::<usize>();
        }
        (t0.elapsed().as_secs_f64(), kc)
    };
    let pattern = format!("{}/bench-{{0..{}}}.tar", dir.display(), shards - 1);
    let cli = |round: usize| {
        let out = dir.join(format!("out-{round}"));
        let t0 = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_karl"))
            .args(["tokenize", &pattern, "-o", out.to_str().unwrap(), "--batch", &batch.to_string()])
            .output()
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert!(o.status.success(), "karl failed: {}", String::from_utf8_lossy(&o.stderr));
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest-00000-of-00001.json")).unwrap()).unwrap();
        assert_eq!(m["images"].as_u64(), Some(n), "{m}");
        let _ = std::fs::remove_dir_all(&out);
        (secs, m["encode_seconds"].as_f64().unwrap(), m["kc"]["mean"].as_f64().unwrap())
    };
    let (mut mem, mut shard, mut inner) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (t, kc) = from_memory();
        mem.push(t);
        let (ts, enc, kc_mean) = cli(round);
        shard.push(ts);
        inner.push(ts / enc - 1.0);
        assert!((kc as f64 / n as f64 - kc_mean).abs() < 1e-6, "the two paths gave different tokens");
        println!(
            "round {round}: from memory {:.2} s ({:.0} img/s) | karl tokenize tar → shards {:.2} s ({:.0} img/s; encoder {:.2} s of it)",
            t,
            n as f64 / t,
            ts,
            n as f64 / ts,
            enc
        );
    }
    let (m, s) = (median(mem), median(shard));
    println!(
        "median: from memory {:.0} img/s, tar → shards {:.0} img/s; shard I/O overhead {:+.1}% (whole process against \
         from memory), {:+.1}% (inside the run: wall time over encoder time)",
        n as f64 / m,
        n as f64 / s,
        (s / m - 1.0) * 100.0,
        median(inner) * 100.0
    );
}
