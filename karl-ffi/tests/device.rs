//! `karl_model_load_on`: `"cpu"`, NULL and `""` give the model `karl_model_load` gives; unknown
//! names and devices not compiled in are clear errors; with the `wgpu` feature (run on Mesa's
//! lavapipe in CI: `CUBECL_WGPU_DEFAULT_DEVICE=Cpu`) a model on wgpu tokenizes and decodes
//! like the CPU one. The model is the built-in one (64 px), written to a directory.
use karl_ffi::*;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The built-in model as a directory (config.json + weights.safetensors), written once.
fn model_dir() -> &'static CString {
    static DIR: OnceLock<CString> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("karl-ffi-device-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (weights, config) = default_model_bytes().expect("this build has the built-in model");
        std::fs::write(dir.join("weights.safetensors"), weights).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        CString::new(dir.to_str().unwrap()).unwrap()
    })
}

/// This thread's last error message.
fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let n = unsafe { karl_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(buf.len() - 1)]).into_owned()
}

/// `karl_model_load_on(model_dir, device)`: the status and the model (NULL on failure).
fn load_on(device: Option<&str>) -> (karl_status, *mut karl_model) {
    let device = device.map(|d| CString::new(d).unwrap());
    let ptr = device.as_ref().map_or(std::ptr::null(), |d| d.as_ptr());
    let mut m: *mut karl_model = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings (or NULL for the device) and a writable out-pointer.
    let s = unsafe { karl_model_load_on(model_dir().as_ptr(), ptr, &mut m) };
    (s, m)
}

/// A deterministic 40x30 test image (stride 120).
fn image() -> Vec<u8> {
    (0..40 * 30 * 3).map(|i| (i * 13 % 251) as u8).collect()
}

/// Encodes the test image adaptively (ε 0.05, budget 64); returns `(positions, .karl bytes)`.
fn encode(m: *const karl_model) -> (Vec<u32>, Vec<u8>) {
    let img = image();
    let mut t: *mut karl_tokens = std::ptr::null_mut();
    // SAFETY: `m` is live; the image is 40x30 with stride 120; `t` is writable.
    assert_eq!(unsafe { karl_encode(m, img.as_ptr(), 40, 30, 120, 0.05, 64, &mut t) }, karl_status::KARL_OK);
    // SAFETY: `t` is live.
    let kc = unsafe { karl_tokens_count(t) };
    let mut positions = vec![0u32; kc];
    // SAFETY: `t` is live; `positions` has `kc` values.
    assert_eq!(unsafe { karl_tokens_positions(t, positions.as_mut_ptr(), kc) }, karl_status::KARL_OK);
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0;
    // SAFETY: `t` is live, `buf` has `buf.len()` bytes, `n` is writable.
    assert_eq!(unsafe { karl_tokens_serialize(t, buf.as_mut_ptr(), buf.len(), &mut n) }, karl_status::KARL_OK);
    // SAFETY: freed once.
    unsafe { karl_tokens_free(t) };
    (positions, buf[..n].to_vec())
}

#[test]
fn cpu_null_and_empty_device_load_the_model_karl_model_load_loads() {
    let mut m: *mut karl_model = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path and a writable out-pointer.
    assert_eq!(unsafe { karl_model_load(model_dir().as_ptr(), &mut m) }, karl_status::KARL_OK);
    let reference = encode(m);
    // SAFETY: freed once.
    unsafe { karl_model_free(m) };
    assert!(!reference.0.is_empty());
    for device in [Some("cpu"), None, Some("")] {
        let (s, m) = load_on(device);
        assert_eq!(s, karl_status::KARL_OK, "{device:?}: {}", last_error());
        assert_eq!(last_error(), "");
        assert_eq!(encode(m), reference, "device {device:?}");
        // SAFETY: freed once.
        unsafe { karl_model_free(m) };
    }
}

#[test]
fn unknown_device_is_an_invalid_argument_naming_the_accepted_ones() {
    for name in ["gpu", "CPU", "cuda ", "vulkan"] {
        let (s, m) = load_on(Some(name));
        assert_eq!(s, karl_status::KARL_INVALID_ARGUMENT, "{name:?}");
        assert!(m.is_null(), "*out was written on failure");
        let msg = last_error();
        assert!(msg.starts_with("karl_model_load_on: unknown device"), "{msg}");
        assert!(msg.contains(&format!("{name:?}")) && msg.contains("\"cpu\", \"cuda\", \"rocm\", \"wgpu\""), "{msg}");
    }
}

#[test]
fn null_path_and_out_are_null_arguments() {
    let cpu = CString::new("cpu").unwrap();
    let mut m: *mut karl_model = std::ptr::null_mut();
    // SAFETY: NULL path (checked by the callee), a valid device, a writable out-pointer.
    assert_eq!(unsafe { karl_model_load_on(std::ptr::null(), cpu.as_ptr(), &mut m) }, karl_status::KARL_NULL_ARGUMENT);
    assert!(last_error().contains("`path`"));
    // SAFETY: valid strings, NULL out (checked by the callee).
    let s = unsafe { karl_model_load_on(model_dir().as_ptr(), cpu.as_ptr(), std::ptr::null_mut()) };
    assert_eq!(s, karl_status::KARL_NULL_ARGUMENT);
    assert!(last_error().contains("`out`"));
    // An unknown device is reported before a missing model.
    let gpu = CString::new("gpu").unwrap();
    let missing = CString::new("/nonexistent/karl/model").unwrap();
    // SAFETY: valid strings and a writable out-pointer.
    let s = unsafe { karl_model_load_on(missing.as_ptr(), gpu.as_ptr(), &mut m) };
    assert_eq!(s, karl_status::KARL_INVALID_ARGUMENT);
    // SAFETY: as above.
    assert_eq!(unsafe { karl_model_load_on(missing.as_ptr(), cpu.as_ptr(), &mut m) }, karl_status::KARL_IO);
    assert!(m.is_null());
}

#[test]
fn precisions_are_parsed_and_ones_a_device_cannot_run_are_unavailable() {
    let (s, m) = load_on(Some("cpu:f16"));
    assert_eq!(s, karl_status::KARL_BACKEND_UNAVAILABLE);
    assert!(m.is_null(), "*out was written on failure");
    let msg = last_error();
    assert!(msg.contains("the CPU backend computes in f32 only; precision f16 needs a GPU device"), "{msg}");
    let (s, m) = load_on(Some("cpu:f32"));
    assert_eq!(s, karl_status::KARL_OK, "{}", last_error());
    // SAFETY: freed once.
    unsafe { karl_model_free(m) };
    let (s, _) = load_on(Some("wgpu:fp8"));
    assert_eq!(s, karl_status::KARL_INVALID_ARGUMENT);
    assert!(last_error().contains("unknown precision \"fp8\": expected f32, f16 or bf16"), "{}", last_error());
    let (s, _) = load_on(Some("wgpu:bf16"));
    assert_eq!(s, karl_status::KARL_BACKEND_UNAVAILABLE);
    let msg = last_error();
    let want =
        if cfg!(feature = "wgpu") { "WGSL has no bfloat16 type" } else { "is not compiled into this libkarl_ffi" };
    assert!(msg.contains(want), "{msg}");
}

#[test]
fn gpu_devices_not_compiled_in_are_unavailable_and_name_the_feature() {
    for (name, compiled) in
        [("wgpu", cfg!(feature = "wgpu")), ("cuda", cfg!(feature = "cuda")), ("rocm", cfg!(feature = "rocm"))]
    {
        if compiled {
            continue;
        }
        let (s, m) = load_on(Some(name));
        assert_eq!(s, karl_status::KARL_BACKEND_UNAVAILABLE, "{name}");
        assert!(m.is_null());
        let msg = last_error();
        assert!(
            msg.contains(&format!("device \"{name}\" is not compiled into this libkarl_ffi"))
                && msg.contains(&format!("--features {name}")),
            "{msg}"
        );
    }
}

/// The model on `spec` against the CPU: loads it on both, encodes the test image with each and
/// decodes the CPU's tokens with each; returns the kept positions on `spec` and on the CPU and
/// the largest difference between the two decodes (in 1/255).
#[cfg(feature = "wgpu")]
fn against_cpu(spec: &str) -> (Vec<u32>, Vec<u32>, u8) {
    let (s, model) = load_on(Some(spec));
    assert_eq!(s, karl_status::KARL_OK, "{spec}: {}", last_error());
    let (s, cpu) = load_on(Some("cpu"));
    assert_eq!(s, karl_status::KARL_OK);
    let (positions, _) = encode(model);
    let (cpu_positions, bytes) = encode(cpu);
    let mut t: *mut karl_tokens = std::ptr::null_mut();
    // SAFETY: `bytes` is live; `t` is writable.
    assert_eq!(unsafe { karl_tokens_deserialize(bytes.as_ptr(), bytes.len(), &mut t) }, karl_status::KARL_OK);
    let (mut a, mut b) = (vec![0u8; 64 * 64 * 3], vec![0u8; 64 * 64 * 3]);
    // SAFETY: live handles and buffers of the stated length; each handle freed once.
    unsafe {
        assert_eq!(karl_decode(model, t, a.as_mut_ptr(), a.len()), karl_status::KARL_OK, "{}", last_error());
        assert_eq!(karl_decode(cpu, t, b.as_mut_ptr(), b.len()), karl_status::KARL_OK);
        karl_tokens_free(t);
        karl_model_free(model);
        karl_model_free(cpu);
    }
    (positions, cpu_positions, a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap())
}

/// The same image on wgpu and on the CPU: the same kept positions and token bytes up to float
/// rounding of the continuous codes, decodes within 2/255, and tokens decode across devices.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_tokenizes_and_decodes_like_the_cpu() {
    let (pg, pc, worst) = against_cpu("wgpu");
    assert_eq!(pg, pc, "kept positions differ between wgpu and the CPU");
    assert!(worst <= 2, "wgpu and CPU decodes differ by up to {worst}/255");
}

/// In f16 on wgpu: the kept positions of the CPU up to one token near the halting threshold,
/// and the CPU's tokens decode within 4/255 of the CPU's image.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_f16_tokenizes_and_decodes_close_to_the_cpu() {
    let (ph, pc, worst) = against_cpu("wgpu:f16");
    assert!(ph.len().abs_diff(pc.len()) <= 1, "KC: wgpu f16 {} vs cpu {}", ph.len(), pc.len());
    let common = ph.iter().filter(|p| pc.contains(p)).count();
    assert!(common + 1 >= ph.len().max(pc.len()), "kept positions: wgpu f16 {ph:?} vs cpu {pc:?}");
    eprintln!("wgpu f16: KC {} (cpu {}), decode differs by up to {worst}/255", ph.len(), pc.len());
    assert!(worst <= 4, "wgpu f16 and CPU decodes differ by up to {worst}/255");
}
