//! `karl_image_metrics` against the reference values of ../shared/golden/metrics (all 8 pairs,
//! given to C as 8-bit RGB with padded rows), and its bad calls.
use karl_ffi::*;
use std::collections::BTreeMap;

fn rgb8(d: &karl_core::TensorData, stride: usize) -> Vec<u8> {
    let v = d.to_f32_vec();
    let [_, _, h, w] = d.shape.dims::<4>();
    let mut out = vec![0u8; stride * h];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                out[y * stride + x * 3 + c] = (v[(c * h + y) * w + x] * 255.0).round() as u8;
            }
        }
    }
    out
}

#[test]
fn metrics_match_the_reference_values() {
    let dir = karl_core::record::shared_dir().join("golden/metrics");
    let t: BTreeMap<String, karl_core::TensorData> =
        karl_core::record::read_safetensors(&dir.join("pairs.safetensors")).unwrap().into_iter().collect();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    let pairs = j["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 8);
    for p in pairs {
        let a = &t[p["a"].as_str().unwrap()];
        let b = p["b"].as_str().map_or(a, |k| &t[k]);
        let [_, _, h, w] = a.shape.dims::<4>();
        let stride = w * 3 + 5;
        let (ra, rb) = (rgb8(a, stride), rgb8(b, stride));
        let mut m = karl_metrics::default();
        // SAFETY: both buffers hold stride*h bytes; `m` is writable.
        let s = unsafe { karl_image_metrics(ra.as_ptr(), rb.as_ptr(), w as u32, h as u32, stride, &mut m) };
        assert_eq!(s, karl_status::KARL_OK);
        let i = p["index"].as_u64().unwrap();
        assert!((m.l1 - p["l1_f64"].as_f64().unwrap()).abs() < 1e-6, "pair {i} l1 {}", m.l1);
        assert!((m.mse - p["mse_f64"].as_f64().unwrap()).abs() < 1e-6, "pair {i} mse {}", m.mse);
        match p["psnr_f64"].as_f64() {
            Some(v) => assert!(m.psnr_infinite == 0 && (m.psnr - v).abs() < 1e-4, "pair {i} psnr {}", m.psnr),
            None => assert_eq!(m.psnr_infinite, 1, "pair {i} is identical"),
        }
        assert!((m.ssim - p["ssim_torchmetrics_f32"].as_f64().unwrap()).abs() < 1e-5, "pair {i} ssim {}", m.ssim);
    }
}

#[test]
fn bad_metric_calls_get_a_status_and_leave_the_output_alone() {
    let img = vec![7u8; 16 * 16 * 3];
    let mut m = karl_metrics { l1: -1.0, ..Default::default() };
    let null = std::ptr::null();
    // SAFETY: every pointer is NULL or valid for the sizes given.
    unsafe {
        assert_eq!(karl_image_metrics(null, img.as_ptr(), 16, 16, 48, &mut m), karl_status::KARL_NULL_ARGUMENT);
        assert_eq!(karl_image_metrics(img.as_ptr(), null, 16, 16, 48, &mut m), karl_status::KARL_NULL_ARGUMENT);
        assert_eq!(
            karl_image_metrics(img.as_ptr(), img.as_ptr(), 16, 16, 48, std::ptr::null_mut()),
            karl_status::KARL_NULL_ARGUMENT
        );
        assert_eq!(
            karl_image_metrics(img.as_ptr(), img.as_ptr(), 16, 16, 47, &mut m),
            karl_status::KARL_INVALID_ARGUMENT
        );
        assert_eq!(
            karl_image_metrics(img.as_ptr(), img.as_ptr(), 0, 16, 48, &mut m),
            karl_status::KARL_INVALID_ARGUMENT
        );
        assert_eq!(
            karl_image_metrics(img.as_ptr(), img.as_ptr(), 4, 4, 12, &mut m),
            karl_status::KARL_INVALID_ARGUMENT
        );
    }
    assert_eq!(m.l1, -1.0, "output untouched on failure");
    let mut buf = [0u8; 256];
    // SAFETY: `buf` has 256 writable bytes.
    assert!(unsafe { karl_last_error_message(buf.as_mut_ptr().cast(), buf.len()) } > 0);
    // SAFETY: identical valid images.
    assert_eq!(unsafe { karl_image_metrics(img.as_ptr(), img.as_ptr(), 16, 16, 48, &mut m) }, karl_status::KARL_OK);
    assert_eq!((m.l1, m.psnr_infinite), (0.0, 1));
    assert!((m.ssim - 1.0).abs() < 1e-5, "ssim of identical images {}", m.ssim);
}
