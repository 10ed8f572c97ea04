//! The C API seen from C: builds the programs of `examples/c` with the system C compiler
//! against the cdylib and the staticlib this test was built with, and runs them on the golden
//! mini model (`$KARL_SHARED/golden/mini`):
//! - `karl_example.c` must find the golden token count and codes of the astronaut image;
//! - `karl_bad_calls.c` drives every function with bad arguments;
//! - `karl_threads.c` encodes from 4 threads with one model.
//!
//! The example and the bad calls also run under `valgrind --leak-check=full --error-exitcode=1`
//! when valgrind is on PATH (set `KARL_FFI_NO_VALGRIND=1` to skip it locally), on a tiny
//! random model written by this test (32 px, pixel base), since the mini model takes minutes
//! under valgrind.
//!
//! Unix only (the programs use pthreads and the tests link with `cc`).
#![cfg(unix)]

use karl_core::TensorData;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{Karl, KarlConfig};
use karl_core::record::safetensors::{read_safetensors, safetensors_bytes};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Files shared by the tests, written once per test process.
struct Fixture {
    /// Temporary directory holding everything below and the built programs.
    dir: PathBuf,
    /// Copies of the cdylib and staticlib under test.
    lib: PathBuf,
    /// The golden model directory.
    model: PathBuf,
    /// A copy of the model with its weights cut in half.
    truncated: PathBuf,
    /// A tiny random model (config.json + weights.safetensors) for the valgrind runs.
    tiny: PathBuf,
    /// The golden astronaut input as raw 256x256 RGB8.
    rgb: PathBuf,
    /// Golden positions and codes of the pass T=256, eps=0.05.
    positions: Vec<u32>,
    codes: Vec<u32>,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tensor<'a>(tensors: &'a [(String, TensorData)], name: &str) -> &'a TensorData {
    &tensors.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("golden tensor {name} is missing")).1
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let model = karl_core::record::shared_dir().join("golden/mini");
        assert!(
            model.join("weights.safetensors").is_file(),
            "no golden model at {} (set KARL_SHARED)",
            model.display()
        );
        let dir = scratch_dir();
        let lib = snapshot_libraries(&dir);

        let golden =
            read_safetensors(&model.join("forward_astronaut.safetensors")).expect("read the golden astronaut pass");
        let input = tensor(&golden, "input").to_f32_vec();
        assert_eq!(tensor(&golden, "input").shape.dims, [1, 3, 256, 256]);
        let s = 256;
        let mut rgb = vec![0u8; s * s * 3];
        for c in 0..3 {
            for i in 0..s * s {
                rgb[i * 3 + c] = (input[c * s * s + i] * 255.0).round() as u8;
            }
        }
        let rgb_path = dir.join("astronaut.rgb");
        std::fs::write(&rgb_path, &rgb).unwrap();

        let active = tensor(&golden, "T256_eps0.05/active").to_f32_vec();
        let vq = tensor(&golden, "T256_eps0.05/vq_indices").to_f32_vec();
        let kc = tensor(&golden, "T256_eps0.05/kc").to_f32_vec()[0] as usize;
        let positions: Vec<u32> = (0..active.len()).filter(|&i| active[i] != 0.0).map(|i| i as u32).collect();
        let codes: Vec<u32> = positions.iter().map(|&p| vq[p as usize] as u32).collect();
        assert_eq!(positions.len(), kc, "golden active mask and kc disagree");

        let truncated = dir.join("truncated-model");
        std::fs::create_dir_all(&truncated).unwrap();
        std::fs::copy(model.join("config.json"), truncated.join("config.json")).unwrap();
        let weights = std::fs::read(model.join("weights.safetensors")).unwrap();
        std::fs::write(truncated.join("weights.safetensors"), &weights[..weights.len() / 2]).unwrap();

        let tiny = dir.join("tiny-model");
        write_tiny_model(&tiny);

        Fixture { dir, lib, truncated, model, tiny, rgb: rgb_path, positions, codes }
    })
}

/// A fresh directory for this test process under cargo's target tmp dir; directories of
/// earlier runs whose process is gone are removed.
fn scratch_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("karl-ffi-c-api");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
            let alive = pid.is_some_and(|p| !cfg!(target_os = "linux") || Path::new(&format!("/proc/{p}")).exists());
            if pid.is_some() && !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tiny model's config: 32 px images, patch 8, pixel base, 1-layer 32-wide transformers,
/// up to 256 latent tokens (the example's budget).
fn tiny_config() -> KarlConfig {
    KarlConfig::pixel("karl_ffi_test_tiny", 32, 8, (32, 1, 2), (32, 1, 2), 256)
}

/// Writes the tiny model (seeded random weights) to `dir`.
fn write_tiny_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = tiny_config();
    let model = Karl::<Cpu<f32>>::new(config.clone(), &CpuDevice, 7).expect("tiny model");
    let tensors = karl_core::nn::module_tensors(&model);
    std::fs::write(dir.join("weights.safetensors"), safetensors_bytes(&tensors, None).unwrap()).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// The directory holding libkarl_ffi.{so,a}: `$KARL_FFI_LIB_DIR`, else this test's own
/// `deps/` directory, where `cargo test` builds the cdylib and staticlib it was built with (it
/// does not copy them up to the profile directory, whose copies may be stale `cargo build`
/// outputs), else the profile directory.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KARL_FFI_LIB_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [deps.to_path_buf(), deps.parent().unwrap().to_path_buf()];
    candidates
        .iter()
        .find(|d| d.join(static_lib_name()).is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no {} next to {}", static_lib_name(), exe.display()))
}

fn static_lib_name() -> &'static str {
    "libkarl_ffi.a"
}

fn shared_lib_name() -> String {
    format!("{}karl_ffi{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// Copies the libraries into `dir/lib` as soon as the test process starts. Their names in
/// `deps/` carry no hash, so another cargo build sharing the target directory (another profile,
/// another checkout) may overwrite them while the tests run; the copies are what this build made.
fn snapshot_libraries(dir: &Path) -> PathBuf {
    let from = lib_dir();
    let to = dir.join("lib");
    std::fs::create_dir_all(&to).unwrap();
    for name in [static_lib_name().to_string(), shared_lib_name()] {
        let src = from.join(&name);
        std::fs::copy(&src, to.join(&name)).unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
    }
    to
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Shared,
    Static,
}

/// Compiles `examples/c/<name>.c` with `-Wall -Wextra -Werror` and links it against the library.
fn build(name: &str, link: Link) -> PathBuf {
    let f = fixture();
    let src = crate_dir().join("../examples/c").join(format!("{name}.c"));
    let exe = f.dir.join(format!("{name}-{link:?}").to_lowercase());
    let lib = &f.lib;
    let cc = std::env::var("CC").unwrap_or_else(|_| String::from("cc"));
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-pthread", "-I"])
        .arg(crate_dir().join("../include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display())).arg("-lkarl_ffi").arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Link::Static => {
            cmd.arg(lib.join(static_lib_name()));
        }
    }
    cmd.args(["-lpthread", "-ldl", "-lm"]);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(out.status.success(), "building {name} ({link:?}) failed:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

fn valgrind_available() -> bool {
    if std::env::var_os("KARL_FFI_NO_VALGRIND").is_some_and(|v| v == "1") {
        eprintln!("note: KARL_FFI_NO_VALGRIND=1: running without valgrind");
        return false;
    }
    let ok = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: valgrind is not on PATH: running the C tests without it (CI installs it)");
    }
    ok
}

/// Runs a program, under valgrind when asked, and fails the test on a non-zero exit.
fn run(exe: &Path, args: &[&Path], valgrind: bool) -> Output {
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args(["--leak-check=full", "--error-exitcode=1", "--quiet"])
            .arg(format!("--suppressions={}", crate_dir().join("tests/valgrind.supp").display()))
            .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    // cargo test puts target/<profile>/{,deps} on LD_LIBRARY_PATH, which wins over the
    // programs' RUNPATH and may hold a stale or foreign libkarl_ffi: load the snapshot only.
    for var in ["LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH"] {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{} {}failed ({}):\nstdout:\n{}\nstderr:\n{}",
        exe.display(),
        if valgrind { "under valgrind " } else { "" },
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The numbers after `key` on the line of stdout starting with it.
fn line_values(stdout: &str, key: &str) -> Vec<u32> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"));
    line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect()
}

/// Runs karl_example on the astronaut and checks KC, positions and codes against the golden pass.
fn example_matches_golden(link: Link) {
    let f = fixture();
    let exe = build("karl_example", link);
    let decoded = f.dir.join(format!("decoded-{link:?}.rgb"));
    let out = run(&exe, &[&f.model, &f.rgb, Path::new("256"), Path::new("256"), &decoded], false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line_values(&stdout, "kc"), [219], "{stdout}");
    assert_eq!(line_values(&stdout, "kc")[0] as usize, f.positions.len());
    assert_eq!(line_values(&stdout, "positions"), f.positions, "positions differ from the golden active mask");
    assert_eq!(line_values(&stdout, "codes"), f.codes, "codes differ from the golden vq_indices");
    assert_eq!(std::fs::metadata(&decoded).unwrap().len(), 256 * 256 * 3);
}

#[test]
fn c_example_static_matches_golden_tokens() {
    example_matches_golden(Link::Static);
}

#[test]
fn c_example_runs_clean_under_valgrind() {
    let f = fixture();
    let exe = build("karl_example", Link::Shared);
    let decoded = f.dir.join("decoded-tiny.rgb");
    let out = run(&exe, &[&f.tiny, &f.rgb, Path::new("256"), Path::new("256"), &decoded], valgrind_available());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kc = line_values(&stdout, "kc")[0] as usize;
    assert!((1..=256).contains(&kc), "{stdout}");
    assert_eq!(line_values(&stdout, "codes").len(), kc);
    assert_eq!(std::fs::metadata(&decoded).unwrap().len(), 32 * 32 * 3);
}

#[test]
fn c_bad_calls_get_the_right_status_and_a_message() {
    let f = fixture();
    let exe = build("karl_bad_calls", Link::Shared);
    let out = run(&exe, &[&f.tiny, &f.truncated], valgrind_available());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(", 0 failures"), "{stdout}");
}

#[test]
fn c_threads_sharing_a_model_match_sequential_encodes() {
    let f = fixture();
    let exe = build("karl_threads", Link::Static);
    let out = run(&exe, &[&f.model, &f.rgb, Path::new("256"), Path::new("256")], false);
    assert!(String::from_utf8_lossy(&out.stdout).contains("threads ok"));
}

/// `karl_model_load_from_memory` (the path of the built-in model) gives the same model as
/// `karl_model_load` on the same files, and `karl_model_load_default` loads the built-in model.
#[test]
fn load_from_memory_matches_load_from_directory() {
    use karl_ffi::*;
    use std::ffi::CString;
    let f = fixture();
    let weights = std::fs::read(f.tiny.join("weights.safetensors")).unwrap();
    let config = CString::new(std::fs::read(f.tiny.join("config.json")).unwrap()).unwrap();
    let path = CString::new(f.tiny.to_str().unwrap()).unwrap();
    let image: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 13 % 251) as u8).collect();
    let mut serialized = Vec::new();
    for from_memory in [false, true] {
        let mut m: *mut karl_model = std::ptr::null_mut();
        // SAFETY: valid NUL-terminated strings, a live buffer and a writable out-pointer.
        let s = unsafe {
            if from_memory {
                karl_model_load_from_memory(weights.as_ptr(), weights.len(), config.as_ptr(), &mut m)
            } else {
                karl_model_load(path.as_ptr(), &mut m)
            }
        };
        assert_eq!(s, karl_status::KARL_OK);
        let mut t: *mut karl_tokens = std::ptr::null_mut();
        // SAFETY: `m` is live; the image is 40x30 with stride 120; `t` is writable.
        assert_eq!(unsafe { karl_encode(m, image.as_ptr(), 40, 30, 120, 0.05, 64, &mut t) }, karl_status::KARL_OK);
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        // SAFETY: `t` is live, `buf` has `buf.len()` bytes, `n` is writable.
        assert_eq!(unsafe { karl_tokens_serialize(t, buf.as_mut_ptr(), buf.len(), &mut n) }, karl_status::KARL_OK);
        serialized.push(buf[..n].to_vec());
        // SAFETY: each handle is freed once.
        unsafe {
            karl_tokens_free(t);
            karl_model_free(m);
        }
    }
    assert_eq!(serialized[0], serialized[1]);
    assert!(default_model_bytes().is_some());
    let mut m: *mut karl_model = std::ptr::null_mut();
    // SAFETY: `m` is writable.
    assert_eq!(unsafe { karl_model_load_default(&mut m) }, karl_status::KARL_OK);
    assert!(!m.is_null());
    let (mut w, mut h) = (0u32, 0u32);
    // SAFETY: `m` is live; `w` and `h` are writable.
    assert_eq!(unsafe { karl_model_image_size(m, &mut w, &mut h) }, karl_status::KARL_OK);
    assert_eq!((w, h), (64, 64));
    let mut t: *mut karl_tokens = std::ptr::null_mut();
    // SAFETY: `m` is live; the image is 40x30 with stride 120; `t` is writable.
    assert_eq!(unsafe { karl_encode(m, image.as_ptr(), 40, 30, 120, 0.05, 64, &mut t) }, karl_status::KARL_OK);
    // SAFETY: `t` is live.
    assert!(unsafe { karl_tokens_count(t) } <= 64);
    // SAFETY: each handle is freed once.
    unsafe {
        karl_tokens_free(t);
        karl_model_free(m);
    }
}

/// Tokens only decode with the model that made them.
#[test]
fn decode_rejects_tokens_of_another_model() {
    use karl_ffi::*;
    use std::ffi::CString;
    let f = fixture();
    let load = |dir: &Path| {
        let path = CString::new(dir.to_str().unwrap()).unwrap();
        let mut m: *mut karl_model = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and a writable out-pointer.
        assert_eq!(unsafe { karl_model_load(path.as_ptr(), &mut m) }, karl_status::KARL_OK);
        m
    };
    let (tiny, mini) = (load(&f.tiny), load(&f.model));
    let image = vec![128u8; 32 * 32 * 3];
    let mut t: *mut karl_tokens = std::ptr::null_mut();
    // SAFETY: live model, a 32x32 image with stride 96, a writable out-pointer.
    let s = unsafe { karl_encode_fixed(tiny, image.as_ptr(), 32, 32, 96, 8, &mut t) };
    assert_eq!(s, karl_status::KARL_OK);
    let mut out = vec![0u8; 256 * 256 * 3];
    // SAFETY: live handles and an output buffer of `out.len()` bytes.
    let s = unsafe { karl_decode(mini, t, out.as_mut_ptr(), out.len()) };
    assert_eq!(s, karl_status::KARL_INVALID_ARGUMENT);
    let mut msg = vec![0u8; 512];
    // SAFETY: `msg` has `msg.len()` bytes.
    let n = unsafe { karl_last_error_message(msg.as_mut_ptr().cast(), msg.len()) };
    let msg = String::from_utf8_lossy(&msg[..n.min(511)]).into_owned();
    assert!(msg.contains("karl_decode") && msg.contains("karl_ffi_test_tiny"), "{msg}");
    assert!(out.iter().all(|&b| b == 0), "rgb_out was written on failure");
    // SAFETY: each handle is freed once.
    unsafe {
        karl_tokens_free(t);
        karl_model_free(tiny);
        karl_model_free(mini);
    }
}

/// The tiled path from C: a 75×50 image with a padded stride on the tiny 32-px model is a 2×3
/// grid; total KC is the sum of the tile counts; the tiled bytes round-trip and corrupted or
/// truncated ones are `KARL_FORMAT`; the full-size decode has 75×50×3 bytes; bad calls get their
/// status; all under valgrind.
#[test]
fn c_tiled_path_runs_clean_under_valgrind() {
    let f = fixture();
    let exe = build("karl_tiles", Link::Shared);
    let decoded = f.dir.join("decoded-tiles.rgb");
    let out = run(&exe, &[&f.tiny, Path::new("75"), Path::new("50"), &decoded], valgrind_available());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("grid 2x3 tile 32"), "{stdout}");
    assert!(stdout.contains(", 0 failures"), "{stdout}");
    let tiles = line_values(&stdout, "tile_kc");
    assert_eq!(tiles.len(), 6);
    assert_eq!(line_values(&stdout, "kc")[0], tiles.iter().sum::<u32>());
    assert_eq!(std::fs::metadata(&decoded).unwrap().len(), 75 * 50 * 3);
}

/// `karl_shards.c` on a token shard of the tiny model written here (two images at the model
/// size, one 75×50 image as a tile grid): every record is read, checked against the index and
/// decoded; one image is found by key; bad calls get their status; all under valgrind.
#[test]
fn c_shard_reader_runs_clean_under_valgrind() {
    use karl_core::model::shard::{ShardBuilder, header};
    use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
    use karl_core::model::{EncodeOptions, TokenFile};
    let f = fixture();
    let tok = karl_core::model::load::load_tokenizer::<Cpu<f32>>(&f.tiny, None, &CpuDevice).unwrap();
    let opts = EncodeOptions { budget: 16, quality: 0.05, fixed: false };
    let img =
        |w: usize, h: usize, k: usize| -> Vec<f32> { (0..3 * w * h).map(|i| ((i * k) % 97) as f32 / 96.0).collect() };
    let mut b = ShardBuilder::new(&tok.model_id, "test");
    let mut bytes = header().to_vec();
    for (key, k) in [("a/first", 3), ("a/second", 5)] {
        let x = karl_core::Tensor::<Cpu<f32>, 4>::from_f32(img(32, 32, k), [1, 3, 32, 32], &CpuDevice).unwrap();
        let t = tok.encode(&x, opts).unwrap().remove(0);
        bytes.extend(b.record(key, &TokenFile::Single(t)).unwrap());
    }
    let tiled = tok.encode_tiled(&img(75, 50, 7), 75, 50, opts, DEFAULT_MAX_PIXELS, 4).unwrap();
    bytes.extend(b.record("wide", &TokenFile::Tiled(tiled)).unwrap());
    b.failure("broken", "not a readable image");
    bytes.extend(b.finish());
    let shard = f.dir.join("test.karlshard");
    std::fs::write(&shard, &bytes).unwrap();

    let exe = build("karl_shards", Link::Shared);
    let out = run(&exe, &[&f.tiny, &shard, Path::new("wide")], valgrind_available());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("images 3 failures 1"), "{stdout}");
    assert!(stdout.contains("image a/second kc"), "{stdout}");
    assert!(stdout.contains("tiles 6 decoded 75x50"), "{stdout}");
    assert!(stdout.contains("found wide at 2"), "{stdout}");
    assert!(stdout.contains(", 0 failures"), "{stdout}");
}
