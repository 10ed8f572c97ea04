//! End-to-end tests of the `karl` binary: the golden tokens through `tokenize --json`, token
//! files through `reconstruct`, `convert` of the golden `.pth`, and one test per kind of bad
//! input (clear message, non-zero exit, no panic).
use std::path::Path;
mod common;
use common::{assert_golden_tokens, fails_with, golden_model, golden_png, json_ok, karl, run_karl, stderr};

#[test]
fn tokenize_json_reproduces_the_golden_tokens_and_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, g) = golden_png("mini", tmp.path());
    let out = tmp.path().join("tok");
    let rec = tmp.path().join("rec");
    let line =
        json_ok(&karl!("tokenize", png, "--model", golden_model("mini"), "--json", "--out", out, "--reconstruct", rec));
    let keys: Vec<&str> = line.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["budget", "codes", "image", "kc", "positions", "quality", "quality_bin", "recon_l1"]);
    assert_golden_tokens(&line, &g, "T256_eps0.05");
    assert_eq!(line["quality_bin"], 5);
    let l1 = line["recon_l1"].as_f64().unwrap();
    assert!((l1 - 0.308).abs() < 0.01, "recon_l1 {l1}");
    // decode the token file again
    let rec2 = tmp.path().join("rec2");
    let o = karl!("reconstruct", out.join("astronaut.karl"), "--model", golden_model("mini"), "--out", rec2,);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(rec.join("astronaut.png")).unwrap(), std::fs::read(rec2.join("astronaut.png")).unwrap());
}

#[test]
fn convert_reads_the_golden_pth() {
    let tmp = tempfile::tempdir().unwrap();
    let o = karl!(
        "convert",
        karl_core::record::shared_dir().join("golden/pth/mini_ema.pth"),
        "--out",
        tmp.path(),
        "--config",
        golden_model("mini").join("config.json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let a = karl_core::record::read_safetensors(&tmp.path().join("weights.safetensors")).unwrap();
    let b = karl_core::record::read_safetensors(&golden_model("mini").join("weights.safetensors")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn corrupt_and_truncated_images_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini", tmp.path());
    let bytes = std::fs::read(&png).unwrap();
    let trunc = tmp.path().join("trunc.png");
    std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    let garbage = tmp.path().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not an image").unwrap();
    for p in [&trunc, &garbage] {
        let o = karl!("tokenize", p, "--model", golden_model("mini"));
        fails_with(&o, "not a readable image");
    }
}

/// A valid 1×1 PNG whose header (with a correct CRC) claims `w`×`h` pixels.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::new(1, 1).write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    // CRC-32 of the IHDR chunk type and data (bytes 12..29), stored at 29..33
    let mut crc = !0u32;
    for &b in &bytes[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    bytes[29..33].copy_from_slice(&(!crc).to_be_bytes());
    bytes
}

#[test]
fn images_above_the_pixel_limit_are_refused_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = tmp.path().join("huge.png");
    std::fs::write(&huge, png_claiming(60000, 60000)).unwrap();
    // resized to the model size (the official preprocessing) and as tiles
    let o = karl!("tokenize", huge, "--resize", "--model", golden_model("mini"));
    fails_with(&o, "60000×60000 = 3600000000 pixels, above the limit of 67108864");
    let o = karl!("tokenize", huge, "--model", golden_model("mini"));
    fails_with(&o, "3619225600 pixels, above the limit of 67108864");
}

#[test]
fn not_a_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini", tmp.path());
    let fake = tmp.path().join("model.safetensors");
    std::fs::write(&fake, b"hello world, definitely not weights").unwrap();
    let o = karl!("tokenize", png, "--model", fake);
    fails_with(&o, "not a checkpoint");
}

#[test]
fn missing_and_misshaped_keys_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini", tmp.path());
    let mut w = karl_core::record::read_safetensors(&golden_model("mini").join("weights.safetensors")).unwrap();
    w.retain(|(k, _)| k != "latent_tokens");
    let i = w.iter().position(|(k, _)| k == "decoder_embed.bias").unwrap();
    w[i].1 = karl_core::TensorData::new_f32(vec![0.0; 7], [7]).unwrap();
    let dir = tmp.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(golden_model("mini").join("config.json"), dir.join("config.json")).unwrap();
    karl_core::record::safetensors::write_safetensors(&dir.join("weights.safetensors"), &w, None).unwrap();
    let o = karl!("tokenize", png, "--model", dir);
    fails_with(&o, "missing keys: [latent_tokens]");
    fails_with(&o, "decoder_embed.bias: checkpoint [7] vs model [256]");
}

#[test]
fn out_of_range_quality_and_budget_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini", tmp.path());
    let m = golden_model("mini");
    for (flag, value, needle) in [
        ("--quality", "0", "quality 0 is outside"),
        ("--quality", "-0.1", "quality -0.1 is outside"),
        ("--quality", "NaN", "quality NaN is outside"),
        ("--budget", "0", "budget 0 is outside"),
        ("--budget", "513", "budget 513 is outside"),
    ] {
        let arg = format!("{flag}={value}");
        let o = karl!("tokenize", png, "--model", m, &arg);
        fails_with(&o, needle);
    }
}

#[test]
fn token_file_from_another_model_or_corrupted_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini", tmp.path());
    let o = karl!("tokenize", png, "--model", golden_model("mini"), "--budget", "16", "--out", tmp.path(),);
    assert!(o.status.success(), "{}", stderr(&o));
    let tok = tmp.path().join("astronaut.karl");
    // another model: the same config with one weight changed
    let mut w = karl_core::record::read_safetensors(&golden_model("mini").join("weights.safetensors")).unwrap();
    let i = w.iter().position(|(k, _)| k == "latent_tokens").unwrap();
    let mut v = w[i].1.to_f32_vec();
    v[0] += 1.0;
    w[i].1 = karl_core::TensorData::new_f32(v, w[i].1.shape.clone()).unwrap();
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(golden_model("mini").join("config.json"), other.join("config.json")).unwrap();
    karl_core::record::safetensors::write_safetensors(&other.join("weights.safetensors"), &w, None).unwrap();
    let out = tmp.path().join("out");
    let o = karl!("reconstruct", tok, "--model", other, "--out", out,);
    fails_with(&o, "tokens were made by model");
    // a flipped bit
    let mut bytes = std::fs::read(&tok).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = tmp.path().join("bad.karl");
    std::fs::write(&bad, &bytes).unwrap();
    let o = karl!("reconstruct", bad, "--model", golden_model("mini"), "--out", out,);
    fails_with(&o, "checksum");
}

#[test]
fn no_resize_demands_the_model_size() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("small.png");
    image::save_buffer(&p, &vec![128u8; 100 * 80 * 3], 100, 80, image::ExtendedColorType::Rgb8).unwrap();
    let o = karl!("tokenize", p, "--model", golden_model("mini"), "--no-resize");
    fails_with(&o, "image is 100×80, the model needs 256×256");
}

#[test]
fn the_built_in_model_tokenizes_without_a_model_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/chelsea.png");
    // --resize: the official preprocessing to the model's 64×64
    let o = karl!("tokenize", img, "--json", "--resize", "--out", tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["budget"], 64, "the built-in model's budget");
    let kc = line["kc"].as_u64().unwrap();
    assert!(kc <= 64);
    assert_eq!(line["positions"].as_array().unwrap().len() as u64, kc);
    assert!(stderr(&o).contains(&format!("KC {kc} of 64")), "human summary on stderr: {}", stderr(&o));
    let rec = tmp.path().join("rec");
    let o = karl!("reconstruct", tmp.path().join("chelsea.karl"), "--out", rec);
    assert!(o.status.success(), "{}", stderr(&o));
    let png = image::open(rec.join("chelsea.png")).unwrap();
    assert_eq!((png.width(), png.height()), (64, 64));
}

/// Without --resize, an image of another size is a grid of model-size tiles: 451×300 in 64-px
/// tiles is 5 rows × 8 columns; total KC is the sum of the tiles'; the token file decodes back
/// to 451×300; the complexity map is written; a grid above --max-pixels is refused before
/// decoding, and a tiled file whose grid does not match its tiles is refused.
#[test]
fn other_sizes_are_tokenized_as_tiles_and_stitched_back() {
    let tmp = tempfile::tempdir().unwrap();
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/chelsea.png");
    let out = tmp.path().to_str().unwrap();
    let o = karl!("tokenize", img, "--json", "--out", out, "--reconstruct", out);
    assert!(o.status.success(), "{}", stderr(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tiles = &line["tiles"];
    assert_eq!((tiles["rows"].as_u64(), tiles["cols"].as_u64(), tiles["tile"].as_u64()), (Some(5), Some(8), Some(64)));
    let per_tile: Vec<u64> = tiles["kc"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(per_tile.len(), 40);
    assert_eq!(per_tile.iter().sum::<u64>(), line["kc"].as_u64().unwrap());
    assert_eq!(line["positions"].as_array().unwrap().len(), 40);
    assert!(line["recon_l1"].as_f64().unwrap() < 0.5);
    assert!(stderr(&o).contains("5×8 tiles of 64 px"), "{}", stderr(&o));
    let png = image::open(tmp.path().join("chelsea.png")).unwrap();
    assert_eq!((png.width(), png.height()), (451, 300));
    let rec = tmp.path().join("rec");
    let karl_file = tmp.path().join("chelsea.karl");
    let o = karl!("reconstruct", karl_file, "--out", rec);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = image::open(rec.join("chelsea.png")).unwrap();
    assert_eq!(again.to_rgb8().as_raw(), png.to_rgb8().as_raw(), "the token file decodes to the same image");
    // the complexity map
    let map = tmp.path().join("map.png");
    let o = karl!("complexity", img, "--map", map);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = image::open(&map).unwrap();
    assert!(m.width() > 451 && m.height() > 300);
    // the figure: one row (one image), the input and two ε columns of 192-px cells
    let fig = tmp.path().join("fig.png");
    let f = fig.to_str().unwrap();
    let o = karl!("complexity", img, "--figure", f, "--figure-qualities", "0.02,0.1");
    assert!(o.status.success(), "{}", stderr(&o));
    let p = image::open(&fig).unwrap();
    assert_eq!((p.width(), p.height()), (3 * (192 + 6) + 6, 192 + 20 + 6 + 6));
    fails_with(&karl!("complexity", img, "--figure", f, "--figure-max", "0"), "--figure-max");
    // the pixel limit, checked from the header
    let o = karl!("tokenize", img, "--out", out, "--max-pixels", "100000");
    fails_with(&o, "above the limit of 100000");
    // a tiled file with a tile missing
    let mut t = karl_core::model::TiledTokens::from_bytes(&std::fs::read(&karl_file).unwrap(), 1 << 26).unwrap();
    t.tiles.pop();
    let bad = tmp.path().join("bad.karl");
    std::fs::write(&bad, t.to_bytes()).unwrap();
    fails_with(&karl!("reconstruct", bad, "--out", rec), "39 tiles for a 5×8 grid");
}

/// `karl train --halting-labels min_budget` logs each image's phase-(b) target T* (a ladder
/// entry or the full budget) and error curve (non-increasing), records the labels in the run's
/// state so `--resume` keeps them, and refuses a ladder it cannot use.
#[test]
fn train_with_min_budget_labels_logs_targets_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let base = ["train", "--preset", "karl_pixel_tiny", "--steps", "2", "--batch", "2", "--out", r];
    let o = run_karl(&[&base[..], &["--halting-labels", "min_budget", "--ladder", "1,4,16,32"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l["terms"]["b/halt_bce_min_budget"].as_f64().unwrap().is_finite());
        assert!([1, 4, 16, 32].contains(&l["budget_a"].as_u64().unwrap()), "{l}");
        for (t, c) in l["t_star_b"].as_array().unwrap().iter().zip(l["curves"].as_array().unwrap()) {
            assert!([1, 4, 16, 32].contains(&t.as_u64().unwrap()), "{l}");
            let c: Vec<f64> = c.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(c.len(), 4);
            assert!(c.windows(2).all(|w| w[1] <= w[0]), "curve rises: {c:?}");
        }
    }
    let ckpt = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("ckpt-"))
        .unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["train"]["halting_labels"], "min_budget");
    // a ladder past the phase-(b) budget (32) or not increasing is a clear error
    let bad = dir.path().join("bad");
    let b = bad.to_str().unwrap();
    let base = ["train", "--preset", "karl_pixel_tiny", "--steps", "1", "--out", b, "--halting-labels", "min_budget"];
    fails_with(&run_karl(&[&base[..], &["--ladder", "1,8,64"]].concat()), "64");
    fails_with(&run_karl(&[&base[..], &["--ladder", "4,2"]].concat()), "increasing");
    fails_with(&karl!("train", "--preset", "karl_pixel_tiny", "--halting-labels", "most"), "min_budget");
}

/// A model with a linear path starts from the fit to its training images (`--linear-fit`):
/// the fitted code and the patch embedding stay as fitted through training and resume, the
/// rest trains; a fit from too few images is a clear error.
#[test]
fn train_fits_the_linear_path_and_keeps_it_through_resume() {
    use karl_core::record::safetensors::read_safetensors;
    let dir = tempfile::tempdir().unwrap();
    let mut config = serde_json::to_value(karl_core::model::KarlConfig::preset("karl_pixel_tiny").unwrap()).unwrap();
    config["linear_path"] = 4.into();
    let cfg = dir.path().join("lin.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let run = dir.path().join("run");
    let (c, r) = (cfg.to_str().unwrap(), run.to_str().unwrap());
    // fitted and trained on the separated synthetic family
    let base = ["train", "--config", c, "--batch", "2", "--out", r, "--checkpoint-every", "1", "--linear-fit", "64"];
    let base = [&base[..], &["--data", "synthetic-separated"]].concat();
    let o = run_karl(&[&base[..], &["--steps", "2"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("linear path fitted to 64 images"), "{}", stderr(&o));
    let weights = |step: &str| -> std::collections::BTreeMap<String, Vec<f32>> {
        read_safetensors(&run.join(format!("ckpt-{step}/weights.safetensors")))
            .unwrap()
            .into_iter()
            .map(|(k, d)| (k, d.to_f32_vec()))
            .collect()
    };
    let o = karl!("train", "--resume", r, "--steps", "3");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fitted"), "a resumed run is not fitted again: {}", stderr(&o));
    let (a, b) = (weights("000000002"), weights("000000003"));
    for frozen in ["patch_embed.weight", "linear_path.to_tokens.weight", "linear_path.patch_out.weight"] {
        assert_eq!(a[frozen], b[frozen], "{frozen} changed after the fit");
    }
    for trained in ["decoder.ffn.2.weight", "halting_mlp.2.weight", "linear_path.halt_eps"] {
        assert_ne!(a[trained], b[trained], "{trained} did not train");
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("ckpt-000000003/state.json")).unwrap()).unwrap();
    assert_eq!(state["train"]["linear_path_frozen"], true);
    // 64-wide embeddings need 256 patches to fit: 2 images of 16 patches are too few
    let few = dir.path().join("few");
    let o = karl!("train", "--config", c, "--steps", "1", "--out", few, "--linear-fit", "2");
    fails_with(&o, "at least 256 patches");
}

/// `karl train --stage 2` end to end: a stage-1 run's checkpoint finetuned with the golden
/// int8 LPIPS-VGG, the discriminators on from the first epoch; the log has every stage-2 term
/// and `d_weight`; `--resume` continues the run; the stage-2 flags are checked.
#[test]
fn train_stage2_finetunes_a_stage1_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let c = karl_core::testing::tiny_vqgan_config();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, serde_json::to_string(&c).unwrap()).unwrap();
    let (s1, s2) = (dir.path().join("s1"), dir.path().join("s2"));
    let o = karl!(
        "train",
        "--config",
        cfg,
        "--steps",
        "2",
        "--batch",
        "2",
        "--out",
        s1,
        "--budgets-a",
        "4,8",
        "--checkpoint-every",
        "2",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let init = s1.join("ckpt-000000002");
    let lpips = karl_core::record::shared_dir().join("golden/stage2/gan_losses_2.safetensors");
    let (i, l, r) = (init.to_str().unwrap(), lpips.to_str().unwrap(), s2.to_str().unwrap());
    let stage2 = ["train", "--stage", "2", "--init", i, "--lpips-weights", l, "--batch", "2", "--out", r];
    let gan = ["--steps-per-epoch", "1", "--gan-epochs", "0,1", "--gan-period", "3", "--checkpoint-every", "2"];
    let o = run_karl(&[&stage2[..], &gan[..], &["--steps", "3"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = |run: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let log = lines(&s2);
    assert_eq!(log.len(), 3);
    let text = log.iter().map(|l| l.to_string()).collect::<String>();
    for key in ["lpips", "d_weight"] {
        assert!(text.contains(key), "no {key} in the stage-2 log: {text}");
    }
    let o = karl!("train", "--resume", r, "--lpips-weights", l, "--steps", "4");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&s2).len(), 4, "the resumed run continues the log");
    // --init is for stage 2, and stage 2 needs its LPIPS weights
    fails_with(&karl!("train", "--config", cfg, "--init", i, "--out", r), "--stage 2");
    let no_lpips = dir.path().join("s3");
    fails_with(&karl!("train", "--stage", "2", "--init", i, "--out", no_lpips), "--lpips-weights");
}

/// A directory holding a symbolic link to itself is walked once: the loop is skipped with a
/// warning, and each image is tokenized once.
#[cfg(unix)]
#[test]
fn directory_walk_survives_a_symlink_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/chelsea.png");
    std::fs::copy(&img, data.join("sub/cat.png")).unwrap();
    std::os::unix::fs::symlink(&data, data.join("sub/loop")).unwrap();
    let out = tmp.path().join("out");
    let o = karl!("tokenize", data, "--resize", "--json", "--out", out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(stderr(&o).contains("link back to its own ancestor"), "{}", stderr(&o));
}

/// `--max-pixels` also bounds the resized (`--resize`) and model-size paths, from the header.
#[test]
fn max_pixels_bounds_every_tokenize_path() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("small.png");
    image::save_buffer(&p, &vec![90u8; 20 * 10 * 3], 20, 10, image::ExtendedColorType::Rgb8).unwrap();
    for mode in ["--resize", "--no-resize"] {
        let o = karl!("tokenize", p, mode, "--max-pixels", "199", "-o", tmp.path());
        fails_with(&o, "20×10 = 200 pixels, above the limit of 199");
    }
    let o = karl!("tokenize", p, "--resize", "--max-pixels", "200", "-o", tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
}
