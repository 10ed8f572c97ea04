//! Time split of one karl_small tokenization (random weights; the timing does not depend on
//! them) of a 256×256 image at T = 256 on the CPU backend: VQGAN encode, KARL encoder, KARL
//! decoder, VQGAN decode, total, and the peak resident memory. Not a timed test: run it with
//! `cargo bench -p karl-core --bench model` (add `-- karl_tiny` etc. for another preset;
//! `-- --runs N` timed runs, default 3; `-- --warmup N` untimed runs first, default 0;
//! `-- --times` one `times model <stage> <seconds>…` line per stage, for
//! `scripts/bench-vs-pytorch.sh`). Threads: rayon's global pool (`RAYON_NUM_THREADS`).
use karl_core::Tensor;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::base::{Base, BaseTokenizer};
use karl_core::model::{Karl, KarlConfig};
use std::time::Instant;

type B = Cpu<f32>;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The value after `--name` (or in `--name=value`) on the command line, if any.
fn flag_value(args: &[String], name: &str) -> Option<usize> {
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, got {v}")))
        } else {
            a.strip_prefix(&eq).map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, got {v}")))
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let preset = args.iter().find(|a| a.starts_with("karl_")).cloned().unwrap_or_else(|| "karl_small".into());
    let runs = flag_value(&args, "--runs").unwrap_or(3).max(1);
    let warmup = flag_value(&args, "--warmup").unwrap_or(0);
    let print_times = args.iter().any(|a| a == "--times");
    let config = KarlConfig::preset(&preset).expect("preset");
    let model = Karl::<B>::new(config.clone(), &CpuDevice, 0).expect("model");
    let s = config.image_size;
    let img: Vec<f32> = (0..3 * s * s).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let x = Tensor::<B, 4>::from_f32(img, [1, 3, s, s], &CpuDevice).expect("image");
    let Base::Vqgan(vq) = &model.base else { panic!("{preset} has no VQGAN base") };
    let mut rows = Vec::new();
    for run in 0..warmup + runs {
        let t0 = Instant::now();
        let pre = vq.vqgan.encode(x.clone());
        let t1 = Instant::now();
        let (img_tokens, _) = model.image_tokens(&x); // includes a second VQGAN encode: subtract it
        let t2 = Instant::now();
        let enc = model.encode_latents(img_tokens, &[5], 256);
        let (_, kept) = model.halting(&enc.halt_logits);
        let q = model.quantize(enc.prequant);
        let t3 = Instant::now();
        let head = model.decode_latents(q.z_q, Some(&kept));
        let t4 = Instant::now();
        let recon = model.base.decode(head);
        let t5 = Instant::now();
        drop((pre, recon));
        let vq_enc = (t1 - t0).as_secs_f64();
        let patch = ((t2 - t1).as_secs_f64() - vq_enc).max(0.0);
        let enc_s = (t3 - t2).as_secs_f64() + patch;
        let dec_s = (t4 - t3).as_secs_f64();
        let vq_dec = (t5 - t4).as_secs_f64();
        if run < warmup {
            continue;
        }
        rows.push((run - warmup, vq_enc, enc_s, dec_s, vq_dec, vq_enc + enc_s + dec_s + vq_dec, kept[0].len()));
    }
    if print_times {
        let stages = ["vqgan_encode", "karl_encoder", "karl_decoder", "vqgan_decode", "total"];
        for (k, name) in stages.iter().enumerate() {
            let v: Vec<String> =
                rows.iter().map(|&(_, a, b, c, d, t, _)| format!("{:.4}", [a, b, c, d, t][k])).collect();
            println!("times model {name} {}", v.join(" "));
        }
    }
    println!("| {preset} run | VQGAN encode s | KARL encoder s | KARL decoder s | VQGAN decode s | total s | kc |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (r, a, b, c, d, t, kc) in rows {
        println!("| {r} | {a:.3} | {b:.3} | {c:.3} | {d:.3} | {t:.3} | {kc} |");
    }
    println!("\npeak RSS {:.0} MB (threads: {})", peak_rss_mb(), rayon::current_num_threads());
}
