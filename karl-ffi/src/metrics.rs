//! `karl_image_metrics`: L1, MSE, PSNR and SSIM (torchmetrics-exact) between two 8-bit RGB
//! images of the same size, computed by karl-core's metrics.
use crate::error::FfiError;
use crate::model::rgb_image;
use crate::status::karl_status;
use karl_core::metrics::{ImageRef, pixel_metrics};

/// Image-quality metrics of a pair (values in [0, 1], data range 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct karl_metrics {
    /// Mean absolute error.
    pub l1: f64,
    /// Mean squared error.
    pub mse: f64,
    /// PSNR in dB; 0 when `psnr_infinite` is set.
    pub psnr: f64,
    /// 1 when the images are identical (PSNR is infinite), else 0.
    pub psnr_infinite: i32,
    /// SSIM (Gaussian 11 taps, σ 1.5, reflect padding, as torchmetrics).
    pub ssim: f64,
}

fn chw(img: karl_core::preprocess::Rgb8<'_>) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let mut out = vec![0.0f32; 3 * w * h];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                out[(c * h + y) * w + x] = img.data[y * img.stride + x * 3 + c] as f32 / 255.0;
            }
        }
    }
    out
}

/// Computes L1, MSE, PSNR and SSIM between `a` (reference) and `b`, both 8-bit interleaved RGB
/// of `width`x`height` pixels with rows `stride` bytes apart (borrowed for the call). Writes
/// `*out` (owned by the caller) only on success. Thread-safe.
///
/// Errors: `KARL_NULL_ARGUMENT` (a, b or out NULL), `KARL_INVALID_ARGUMENT` (sizes, stride, or
/// an image smaller than 6x6, which SSIM's reflect padding needs).
///
/// # Safety
/// `a` and `b` are NULL or hold `stride*(height-1) + 3*width` bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_image_metrics(
    a: *const u8,
    b: *const u8,
    width: u32,
    height: u32,
    stride: usize,
    out: *mut karl_metrics,
) -> karl_status {
    ffi_boundary!("karl_image_metrics", {
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        // SAFETY: forwarded from the caller.
        let ia = unsafe { rgb_image(a, width, height, stride, "a") }?;
        // SAFETY: forwarded from the caller.
        let ib = unsafe { rgb_image(b, width, height, stride, "b") }?;
        let (xa, xb) = (chw(ia), chw(ib));
        let (h, w) = (height as usize, width as usize);
        let m = pixel_metrics(ImageRef::new(&xa, 3, h, w)?, ImageRef::new(&xb, 3, h, w)?)?;
        let r = karl_metrics {
            l1: m.l1,
            mse: m.mse,
            psnr: m.psnr.unwrap_or(0.0),
            psnr_infinite: m.psnr.is_none() as i32,
            ssim: m.ssim,
        };
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { out.write(r) };
        Ok(())
    })
}
