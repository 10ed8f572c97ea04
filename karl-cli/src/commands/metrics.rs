//! `karl metrics A B`: L1, MSE, PSNR, SSIM (torchmetrics-exact) and optionally LPIPS between two
//! images of the same size.
use super::CpuBackend as B;
use crate::args::MetricsArgs;
use crate::image_io::read_rgb8;
use anyhow::{Result, bail};
use karl_core::Tensor;
use karl_core::cpu::CpuDevice;
use karl_core::metrics::lpips::{InputRange, Lpips};
use karl_core::metrics::{ImageRef, pixel_metrics};
use std::path::Path;

fn chw(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let (rgb, w, h) = read_rgb8(path)?;
    let mut out = vec![0.0f32; 3 * w * h];
    for (i, px) in rgb.chunks(3).enumerate() {
        for c in 0..3 {
            out[c * w * h + i] = px[c] as f32 / 255.0;
        }
    }
    Ok((out, w, h))
}

/// Runs `karl metrics`.
pub fn run(a: MetricsArgs) -> Result<()> {
    let (xa, wa, ha) = chw(&a.a)?;
    let (xb, wb, hb) = chw(&a.b)?;
    if (wa, ha) != (wb, hb) {
        bail!("image sizes differ: {} is {wa}×{ha}, {} is {wb}×{hb}", a.a.display(), a.b.display());
    }
    let m = pixel_metrics(ImageRef::new(&xa, 3, ha, wa)?, ImageRef::new(&xb, 3, ha, wa)?)?;
    let lpips = match &a.lpips_weights {
        Some(p) => {
            let net = Lpips::<B>::from_file(p, &CpuDevice)?;
            let ta = Tensor::<B, 4>::from_f32(xa, [1, 3, ha, wa], &CpuDevice)?;
            let tb = Tensor::<B, 4>::from_f32(xb, [1, 3, ha, wa], &CpuDevice)?;
            let range = if a.lpips_unit_range { InputRange::ZeroToOne } else { InputRange::MinusOneToOne };
            Some(net.distance(&ta, &tb, range)?)
        }
        None => None,
    };
    if a.json {
        let mut v = serde_json::json!({ "l1": m.l1, "mse": m.mse, "psnr": m.psnr, "ssim": m.ssim });
        if m.psnr.is_none() {
            v["note"] = serde_json::json!("images are identical: PSNR is infinite (null)");
        }
        if let Some(l) = &lpips {
            v["lpips"] = serde_json::json!(l.total);
            v["lpips_per_layer"] = serde_json::json!(l.per_layer);
        }
        println!("{v}");
    } else {
        println!("l1     {:.6}", m.l1);
        println!("mse    {:.6}", m.mse);
        match m.psnr {
            Some(p) => println!("psnr   {p:.4} dB"),
            None => println!("psnr   inf (identical images)"),
        }
        println!("ssim   {:.6}", m.ssim);
        if let Some(l) = &lpips {
            println!("lpips  {:.6}", l.total);
        }
    }
    Ok(())
}
