//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the same body
//! the libFuzzer target runs (`karl_tests::fuzzing`), on stable and without libFuzzer, so CI
//! checks the readers against every input the fuzzer kept. `write_seeds` (ignored) writes the
//! hand-made seed inputs the campaign started from (fuzz/README.md).
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::load::tokenizer_from_bytes;
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
use karl_core::model::{EncodeOptions, KarlConfig, TokenCodes, Tokenizer, Tokens};
use karl_core::record::{safetensors_bytes, shared_dir};
use karl_core::{DType, Tensor, TensorData};
use karl_tests::fuzzing::TARGETS;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn replays_every_corpus_file() {
    let start = Instant::now();
    let mut total = 0;
    for (name, body) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for target {name}");
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "target {name}: {} fails", f.display());
        }
        total += files.len();
        eprintln!("{name}: {} files, {:.1?} so far", files.len(), start.elapsed());
    }
    eprintln!("replayed {total} corpus files in {:.1?}", start.elapsed());
}

// ---- seeds ----

fn tiny_tokenizer() -> Tokenizer<Cpu<f32>> {
    let (weights, config) = karl_ffi::fuzzing::tiny_model_files();
    tokenizer_from_bytes::<Cpu<f32>>(weights, Some(config), &CpuDevice).unwrap()
}

fn ramp(w: usize, h: usize) -> Vec<f32> {
    (0..3 * w * h).map(|i| ((i * 37) % 255) as f32 / 255.0).collect()
}

fn rgb8(h: usize, stride: usize) -> Vec<u8> {
    (0..stride * h).map(|i| (i * 29 % 256) as u8).collect()
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn c_api_header(op: u8, w: u32, h: u32, stride: u32, quality: f32, budget: u32) -> Vec<u8> {
    let mut v = vec![op];
    for x in [w, h, stride, quality.to_bits(), budget] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn image_bytes(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Writes the seed inputs into `fuzz/corpus/<target>/seed-*` (run before a campaign; the
/// minimised corpus keeps those that add coverage).
#[test]
#[ignore = "writes files; run by hand before a fuzzing campaign"]
fn write_seeds() {
    let tok = tiny_tokenizer();
    let x = Tensor::<Cpu<f32>, 4>::from_f32(ramp(32, 32), [1, 3, 32, 32], &CpuDevice).unwrap();
    let mut token_sets = Vec::new();
    for (budget, fixed) in [(16, false), (64, false), (256, false), (8, true)] {
        let t = tok.encode(&x, EncodeOptions { budget, quality: 0.05, fixed }).unwrap().remove(0);
        write("token_file", &format!("b{budget}-{fixed}"), &t.to_bytes());
        write("c_api", &format!("tokens-b{budget}"), &[c_api_header(2, 0, 0, 0, 0.0, 0), t.to_bytes()].concat());
        token_sets.push(t);
    }
    let continuous = Tokens {
        model_id: "m".into(),
        budget: 4,
        quality: 0.1,
        quality_bin: 9,
        fixed: false,
        image_size: [32, 32],
        positions: vec![0, 2],
        codes: TokenCodes::Continuous { dim: 2, values: vec![0.5, -1.0, f32::MIN_POSITIVE, 3.0] },
    };
    write("token_file", "continuous", &continuous.to_bytes());
    write("tiled_token_file", "single", &token_sets[0].to_bytes());
    for (w, h) in [(40, 70), (32, 32), (100, 20)] {
        let t = tok.encode_tiled(
            &ramp(w, h),
            w,
            h,
            EncodeOptions { budget: 16, ..Default::default() },
            DEFAULT_MAX_PIXELS,
            4,
        );
        let bytes = t.unwrap().to_bytes();
        write("tiled_token_file", &format!("{w}x{h}"), &bytes);
        write("c_api", &format!("tiled-{w}x{h}"), &[c_api_header(3, 0, 0, 0, 0.0, 0), bytes].concat());
    }
    for (op, w, h, stride, q, b) in [
        (0, 32, 32, 96, 0.05, 64),
        (1, 40, 20, 130, 0.05, 16),
        (0, 1, 50, 3, 0.3, 256),
        (0, 7, 3, 21, 1.0, 1),
        (0, 1, 20000, 3, 0.05, 16),
    ] {
        let px = rgb8(h as usize, stride as usize);
        write("c_api", &format!("encode{op}-{w}x{h}"), &[c_api_header(op, w, h, stride, q, b), px].concat());
    }

    let (weights, config) = karl_ffi::fuzzing::tiny_model_files();
    write("safetensors", "tiny-model", weights);
    let f = |v: Vec<f64>, s: &[usize], d: DType| TensorData::new_as(v, s, d).unwrap();
    let small = vec![
        ("a".to_string(), TensorData::new_f32(vec![1.5, -0.0, 3.0, 1e-40], [2, 2]).unwrap()),
        ("b".to_string(), f(vec![1.0, 2.0], &[2], DType::F64)),
        ("c".to_string(), f(vec![1.0, 2.0, 3.0], &[3], DType::F16)),
        ("d".to_string(), f(vec![1.0], &[1, 1], DType::BF16)),
        ("e".to_string(), f(vec![-3.0, 4.0], &[2], DType::I64)),
        ("f".to_string(), f(vec![7.0], &[], DType::I32)),
        ("g".to_string(), f(vec![0.0, 255.0], &[2], DType::U8)),
        ("h".to_string(), f(vec![1.0, 0.0], &[2], DType::Bool)),
        ("latent_tokens".to_string(), TensorData::new_f32(vec![0.0; 8], [2, 4]).unwrap()),
    ];
    write("safetensors", "all-dtypes", &safetensors_bytes(&small, None).unwrap());
    write("safetensors", "empty", &safetensors_bytes(&[], None).unwrap());

    let golden = shared_dir().join("golden");
    let pth = std::fs::read(golden.join("pth/tiny_views.pth")).unwrap();
    write("pth", "tiny_views.pth", &pth);
    let mut zip = zip_data_pkl(&pth);
    write("pth", "tiny_views.pkl", &std::mem::take(&mut zip));
    for (i, p) in [
        &b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(K\x02G?\xf0\x00\x00\x00\x00\x00\x00eu."[..],
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x86\x94h\x00h\x01\x87\x94.",
        b"(lp0\nI1\naI2\na(dp1\nS'k'\np2\nF1.5\nsa.",
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00xq\x02N\x85q\x03b.",
    ]
    .iter()
    .enumerate()
    {
        write("pth", &format!("pickle{i}"), p);
    }

    write("config", "tiny", config.as_bytes());
    for p in ["mini/config.json", "mini_vae/config.json", "mini_vae/continuous/config.json"] {
        write("config", &p.replace('/', "-"), &std::fs::read(golden.join(p)).unwrap());
    }
    write("config", "default", &std::fs::read(fuzz_dir().join("../models/default/config.json")).unwrap());
    for name in KarlConfig::PRESETS {
        write("config", name, serde_json::to_string(&KarlConfig::preset(name).unwrap()).unwrap().as_bytes());
    }

    let coffee = image::open(fuzz_dir().join("../examples/images/coffee.png")).unwrap();
    let small = coffee.resize_exact(24, 20, image::imageops::FilterType::Triangle);
    for (name, f) in [
        ("png", image::ImageFormat::Png),
        ("jpg", image::ImageFormat::Jpeg),
        ("webp", image::ImageFormat::WebP),
        ("bmp", image::ImageFormat::Bmp),
    ] {
        write("image", &format!("coffee.{name}"), &image_bytes(&small, f));
    }
    write(
        "image",
        "gray.png",
        &image_bytes(&image::DynamicImage::ImageLuma8(small.to_luma8()), image::ImageFormat::Png),
    );
    write(
        "image",
        "rgba.png",
        &image_bytes(&image::DynamicImage::ImageRgba8(small.to_rgba8()), image::ImageFormat::Png),
    );
    write(
        "image",
        "rgb16.png",
        &image_bytes(&image::DynamicImage::ImageRgb16(small.to_rgb16()), image::ImageFormat::Png),
    );
    // 1×20000: preprocessing resizes it to 32×640000 (the case that once needed O(width·height·S²) memory)
    let thin = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(1, 20000, |_, y| image::Rgb([y as u8, 9, 200])));
    write("image", "1x20000.png", &image_bytes(&thin, image::ImageFormat::Png));
    let line = coffee.resize_exact(1, 300, image::imageops::FilterType::Nearest);
    write("image", "1x300.png", &image_bytes(&line, image::ImageFormat::Png));
    write("image", "1x1.bmp", &image_bytes(&coffee.crop_imm(0, 0, 1, 1), image::ImageFormat::Bmp));
}

/// The `data.pkl` member of a stored (uncompressed) torch zip, found by its local header.
fn zip_data_pkl(zip: &[u8]) -> Vec<u8> {
    let name = b"data.pkl";
    let mut i = 0;
    while i + 30 < zip.len() {
        if zip[i..i + 4] == *b"PK\x03\x04" {
            let n = u16::from_le_bytes([zip[i + 26], zip[i + 27]]) as usize;
            let extra = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            let size = u32::from_le_bytes([zip[i + 18], zip[i + 19], zip[i + 20], zip[i + 21]]) as usize;
            let fname = &zip[i + 30..i + 30 + n];
            let start = i + 30 + n + extra;
            if fname.ends_with(name) {
                return zip[start..start + size].to_vec();
            }
            i = start + size;
        } else {
            i += 1;
        }
    }
    panic!("no data.pkl in the zip");
}
