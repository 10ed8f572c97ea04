//! `karl_model_set_vae_latent` on the golden VAE-base model (../shared/golden/mini_vae): the
//! default mode draw gives the official mode-pass tokens, a seeded sample draw is repeatable
//! and differs from the mode, and bad calls (unknown draw, a VQGAN model, NULL) are errors.
use karl_ffi::*;
use std::ffi::CString;

fn load(dir: &str) -> *mut karl_model {
    let path = CString::new(karl_core::record::shared_dir().join(dir).to_str().unwrap()).unwrap();
    let mut m = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path and a writable out-pointer.
    assert_eq!(unsafe { karl_model_load(path.as_ptr(), &mut m) }, karl_status::KARL_OK);
    m
}

/// The golden astronaut input as 8-bit RGB, and the golden tensors.
fn astronaut() -> (Vec<u8>, Vec<(String, karl_core::TensorData)>) {
    let dir = karl_core::record::shared_dir().join("golden/mini_vae");
    let g = karl_core::record::read_safetensors(&dir.join("forward_astronaut.safetensors")).unwrap();
    let input = g.iter().find(|(k, _)| k == "input").unwrap().1.to_f32_vec();
    let mut rgb = vec![0u8; 256 * 256 * 3];
    for c in 0..3 {
        for i in 0..256 * 256 {
            rgb[i * 3 + c] = (input[c * 65536 + i] * 255.0).round() as u8;
        }
    }
    (rgb, g)
}

/// Positions and codes of one encode at T = 64, ε = 0.01.
fn encode(m: *const karl_model, rgb: &[u8]) -> (Vec<u32>, Vec<u32>) {
    let mut t = std::ptr::null_mut();
    // SAFETY: a live model, a 256×256 RGB buffer and a writable out-pointer.
    let s = unsafe { karl_encode(m, rgb.as_ptr(), 256, 256, 768, 0.01, 64, &mut t) };
    assert_eq!(s, karl_status::KARL_OK);
    // SAFETY: `t` is live until freed below; the buffers hold `n` values.
    unsafe {
        let n = karl_tokens_count(t);
        let (mut p, mut c) = (vec![0u32; n], vec![0u32; n]);
        assert_eq!(karl_tokens_positions(t, p.as_mut_ptr(), n), karl_status::KARL_OK);
        assert_eq!(karl_tokens_codes(t, c.as_mut_ptr(), n), karl_status::KARL_OK);
        karl_tokens_free(t);
        (p, c)
    }
}

#[test]
fn the_latent_draw_is_a_model_option() {
    let (rgb, g) = astronaut();
    let get = |k: &str| g.iter().find(|(n, _)| n == k).unwrap().1.to_i64_vec();
    let m = load("golden/mini_vae");
    let active = get("T64_eps0.01_mode/active");
    let vq = get("T64_eps0.01_mode/vq_indices");
    let positions: Vec<u32> = (0..64).filter(|&i| active[i as usize] == 1).collect();
    let codes: Vec<u32> = positions.iter().map(|&i| vq[i as usize] as u32).collect();
    assert_eq!(encode(m, &rgb), (positions.clone(), codes.clone()), "default draw = the golden mode pass");
    // SAFETY: `m` is live and used by this thread only.
    unsafe {
        assert_eq!(karl_model_set_vae_latent(m, KARL_VAE_LATENT_SAMPLE, 11), karl_status::KARL_OK);
        let sampled = encode(m, &rgb);
        assert_eq!(encode(m, &rgb), sampled, "a seeded sample draw repeats");
        assert_ne!(sampled.1, codes, "sampling moves the codes");
        assert_eq!(karl_model_set_vae_latent(m, KARL_VAE_LATENT_MODE, 0), karl_status::KARL_OK);
        assert_eq!(encode(m, &rgb), (positions, codes));
        assert_eq!(karl_model_set_vae_latent(m, 7, 0), karl_status::KARL_INVALID_ARGUMENT);
        assert_eq!(karl_model_set_vae_latent(std::ptr::null_mut(), 0, 0), karl_status::KARL_NULL_ARGUMENT);
        karl_model_free(m);
        let vqgan = load("golden/mini");
        assert_eq!(karl_model_set_vae_latent(vqgan, KARL_VAE_LATENT_SAMPLE, 1), karl_status::KARL_INVALID_ARGUMENT);
        let mut buf = vec![0 as std::ffi::c_char; 512];
        let n = karl_last_error_message(buf.as_mut_ptr(), buf.len());
        let msg = String::from_utf8_lossy(&buf[..n.min(511)].iter().map(|&c| c as u8).collect::<Vec<_>>()).to_string();
        assert!(msg.contains("vqgan"), "{msg}");
        karl_model_free(vqgan);
    }
}
