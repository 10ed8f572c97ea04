//! `--device`: a device not compiled in, or unknown, is a clear error; `karl info` lists the
//! devices; with the `wgpu` feature (CI: `cargo test -p karl-cli --features wgpu --test device`
//! on Mesa's lavapipe, `CUBECL_WGPU_DEFAULT_DEVICE=Cpu`) the built-in model tokenizes on wgpu
//! to the same tokens as on the CPU, and token files decode across devices; in f16 on wgpu
//! within one token and 5e-3 recon L1 of the CPU; `karl train --device wgpu` logs the CPU's
//! losses. `--precision` combinations a device cannot run are clear errors.
use std::path::{Path, PathBuf};
mod common;
use common::{karl, stderr};

fn coffee() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/coffee.png")
}

/// The devices and whether this build has them.
const DEVICES: [(&str, bool); 4] = [
    ("cpu", true),
    ("cuda", cfg!(feature = "cuda")),
    ("rocm", cfg!(feature = "rocm")),
    ("wgpu", cfg!(feature = "wgpu")),
];

#[test]
fn devices_not_compiled_in_are_clear_errors_naming_the_feature() {
    let img = coffee();
    for (name, compiled) in DEVICES {
        if compiled {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let o = karl!("tokenize", "--resize", img, "--device", name, "--out", tmp.path(),);
        let e = stderr(&o);
        assert!(!o.status.success() && !e.contains("panicked"), "{e}");
        let want = format!(
            "device '{name}' is not compiled into this karl build; rebuild with: cargo build --release -p karl-cli \
             --features {name}"
        );
        assert!(e.contains(&want), "{e}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "files were written");
        let o = karl!("train", "--preset", "karl_pixel_tiny", "--steps", "1", "--device", name);
        assert!(!o.status.success() && stderr(&o).contains(&want), "{}", stderr(&o));
    }
    let o = karl!("tokenize", "--resize", img, "--device", "tpu");
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("invalid value 'tpu'") && e.contains("cpu, cuda, rocm, wgpu"), "{e}");
}

#[test]
fn info_lists_the_devices() {
    let o = karl!("info", "--json");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["device"], "cpu");
    let devices = v["devices"].as_array().unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cpu", "cuda", "rocm", "wgpu"]);
    for (d, (name, compiled)) in devices.iter().zip(DEVICES) {
        assert_eq!(d["compiled"], compiled, "{name}");
        if !compiled {
            assert_eq!(d["usable"], false, "{name}");
            assert!(d["reason"].as_str().unwrap().contains("not compiled"), "{d}");
        }
    }
    assert_eq!(devices[0]["usable"], true);
    let o = karl!("info");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("device cpu   usable"), "{text}");
}

#[test]
fn precisions_a_device_cannot_run_are_clear_errors() {
    let img = coffee();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let o = karl!("tokenize", "--resize", img, "--precision", "f16", "--out", out);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    assert!(e.contains("the CPU backend computes in f32 only; --precision f16 needs a GPU device"), "{e}");
    let o = karl!("tokenize", "--resize", img, "--precision", "fp8", "--out", out);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("unknown precision \"fp8\": expected f32, f16 or bf16"), "{e}");
    if cfg!(feature = "wgpu") {
        let o = karl!("tokenize", "--resize", img, "--device", "wgpu", "--precision", "bf16", "--out", out,);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains("WGSL has no bfloat16 type; use f16 on wgpu"), "{e}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "files were written");
}

/// The built-in model on wgpu: the same kept positions as on the CPU for the coffee image at
/// three qualities, and the CPU's token file decodes on wgpu to the CPU's image within 2/255.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_tokenizes_like_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let img = coffee();
    let o = karl!("info", "--device", "wgpu", "--json");
    assert!(o.status.success(), "wgpu is not usable here: {}", stderr(&o));
    let run_in = |device: &str, precision: &str, q: &str| -> serde_json::Value {
        let out = tmp.path().join(format!("{device}-{precision}-{q}"));
        let o = karl!(
            "tokenize",
            "--resize",
            img,
            "--device",
            device,
            "--precision",
            precision,
            "--quality",
            q,
            "--json",
            "--out",
            out,
            "--reconstruct",
            out,
        );
        assert!(o.status.success(), "--device {device} --precision {precision}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let run = |device: &str, q: &str| run_in(device, "f32", q);
    for q in ["0.03", "0.05", "0.09"] {
        let (g, c) = (run("wgpu", q), run("cpu", q));
        assert_eq!(g["kc"], c["kc"], "KC at ε {q}: wgpu {} vs cpu {}", g["kc"], c["kc"]);
        assert_eq!(g["positions"], c["positions"], "ε {q}");
        let (lg, lc) = (g["recon_l1"].as_f64().unwrap(), c["recon_l1"].as_f64().unwrap());
        assert!((lg - lc).abs() < 2e-3, "recon L1 at ε {q}: wgpu {lg} vs cpu {lc}");
        // f16 storage: a halting probability near the threshold may flip one token.
        let h = run_in("wgpu", "f16", q);
        let (kh, kc) = (h["kc"].as_i64().unwrap(), c["kc"].as_i64().unwrap());
        assert!((kh - kc).abs() <= 1, "KC at ε {q}: wgpu f16 {kh} vs cpu {kc}");
        let lh = h["recon_l1"].as_f64().unwrap();
        assert!((lh - lc).abs() < 5e-3, "recon L1 at ε {q}: wgpu f16 {lh} vs cpu {lc}");
        eprintln!("ε {q}: KC cpu {kc}, wgpu f16 {kh}; recon L1 cpu {lc:.5}, wgpu f16 {lh:.5}");
    }
    // The CPU's token file, decoded on wgpu.
    let cpu_dir = tmp.path().join("cpu-f32-0.05");
    let rec = tmp.path().join("rec-wgpu");
    let tokens = cpu_dir.join("coffee.karl");
    let o = karl!("reconstruct", tokens, "--device", "wgpu", "--out", rec);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = image::open(rec.join("coffee.png")).unwrap().to_rgb8();
    let b = image::open(cpu_dir.join("coffee.png")).unwrap().to_rgb8();
    assert_eq!(a.dimensions(), (64, 64));
    let worst = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    assert!(worst <= 2, "wgpu and CPU decodes differ by up to {worst}/255");
}

/// `karl train` on wgpu (autodiff over the cubecl backend): three steps of the tiny preset give
/// the CPU's per-step losses, ε0 and phase-(b) token counts (losses within 1e-3 relative).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_like_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let train = |device: &str| -> Vec<serde_json::Value> {
        let out = tmp.path().join(device);
        let o = karl!(
            "train",
            "--preset",
            "karl_pixel_tiny",
            "--data",
            "synthetic",
            "--steps",
            "3",
            "--batch",
            "4",
            "--seed",
            "5",
            "--device",
            device,
            "--out",
            out,
        );
        assert!(o.status.success(), "karl train --device {device}: {}", stderr(&o));
        let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (g, c) = (train("wgpu"), train("cpu"));
    assert_eq!(g.len(), 3, "wgpu logged {} steps", g.len());
    assert_eq!(c.len(), 3, "cpu logged {} steps", c.len());
    for (sg, sc) in g.iter().zip(&c) {
        let step = &sc["step"];
        assert_eq!(sg["budget_a"], sc["budget_a"], "step {step}: phase-(a) budget");
        let (lg, lc) = (sg["loss"].as_f64().unwrap(), sc["loss"].as_f64().unwrap());
        assert!((lg - lc).abs() <= 1e-3 * lc.abs(), "step {step}: loss wgpu {lg} vs cpu {lc}");
        for (eg, ec) in sg["eps0"].as_array().unwrap().iter().zip(sc["eps0"].as_array().unwrap()) {
            let (eg, ec) = (eg.as_f64().unwrap(), ec.as_f64().unwrap());
            assert!((eg - ec).abs() <= 1e-3, "step {step}: ε0 wgpu {eg} vs cpu {ec}");
        }
        assert_eq!(sg["kc_b"], sc["kc_b"], "step {step}: phase-(b) token counts");
        eprintln!("step {step}: loss cpu {lc:.6}, wgpu {lg:.6}");
    }
}
