//! Fitting the linear token path to images before training (principal components), so its code
//! is ordered and, for squared error, the best linear code of its size from step 0 — SGD takes
//! hundreds of steps to find it, which is most of a short CPU run.
//!
//! Two levels, both from second moments of the images given (uncentered, so the mean image is
//! part of the code and needs no bias):
//! 1. per patch: the reduced-rank regression of the patch pixels on the patch embedding — the
//!    `k` directions of pixel space that the embedding predicts best (`patch_out`, orthonormal)
//!    and the map from the embedding onto them (`patch_in`);
//! 2. per image: the principal components of all patches' `k` channels, in decreasing order
//!    of energy, `d` per token (`to_tokens`, its transpose `from_tokens`). Token values keep their
//!    natural scale, so the energy of the code after token j (what the halting head reads) is
//!    the squared error of dropping those tokens.
//!
//! The patch embedding is set first to the leading principal components of the patch pixels
//! (scaled), so the regression of level 1 sees the patch's main directions, not a random
//! projection of them. The transformers' contributions (the pre-quantizer and the decoder head's last layer) are
//! set to zero, so the model starts as the fitted code and the transformers learn what is left,
//! like a zero-initialised residual branch. Needs `std` (faer's eigendecomposition).
use super::base::Base;
use super::karl::Karl;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use faer::{Mat, Side};

/// What a fit measured on its images.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearFit {
    /// Images the moments came from.
    pub images: usize,
    /// Root-mean-square error per pixel value of the fitted linear code keeping the first `j`
    /// tokens, `j = 0..=max_latent_tokens`, on those images (non-increasing).
    pub rms_by_tokens: Vec<f64>,
}

/// Fits `model`'s linear path to `batches` (images `[N, 3, S, S]` in [0, 1]) and zeroes the
/// pre-quantizer and the decoder head's last layer. Pixel-base models with a linear path only.
/// Under autodiff the new tensors are constants: mark the parameters trainable afterwards.
pub fn fit_linear_path<B: Backend>(model: &mut Karl<B>, batches: &[Tensor<B, 4>]) -> Result<LinearFit> {
    let Base::Pixel(pixel) = &model.base else {
        return Err(Error::Config("fitting the linear path needs a pixel-base model".into()));
    };
    let Some(lp) = &model.linear_path else {
        return Err(Error::Config("the model has no linear path (config `linear_path`) to fit".into()));
    };
    let k = lp.patch_in.weight.dims()[0];
    let (d, t_max) = (model.config.vq_token_dim, model.config.max_latent_tokens);
    let pixel = pixel.clone();
    if batches.is_empty() {
        return Err(Error::InvalidArgument("fitting the linear path needs at least one image".into()));
    }

    // ---- pass 0: the patch embedding becomes the leading principal components of the patch
    // pixels, each scaled to RMS 0.5 (floored at 1e-3 of the first one's energy), as fast
    // CIFAR trainers initialise their first convolution from whitened patches
    // the pixel targets Y [rows, head] of each batch, kept for pass 1
    let targets: Vec<Mat<f64>> = batches
        .iter()
        .map(|x| {
            let y = pixel.patchify(x);
            let [n, p, h] = y.dims();
            let y_v = y.to_vec();
            Mat::<f64>::from_fn(n * p, h, |i, j| y_v[i * h + j] as f64)
        })
        .collect();
    let h = targets[0].ncols();
    let count: usize = targets.iter().map(|y| y.nrows()).sum();
    let mut cyy = Mat::<f64>::zeros(h, h);
    for ym in &targets {
        cyy += ym.transpose() * ym;
    }
    cyy *= faer::Scale(1.0 / count as f64);
    let [out, cin, kh, kw] = model.patch_embed.weight.dims();
    if cin * kh * kw != h {
        return Err(Error::Config(format!(
            "patch embedding [{out}, {cin}, {kh}, {kw}] does not read {h}-value patches"
        )));
    }
    let lead = out.min(h);
    let (u0, l0) = top_eigenvectors(&cyy, lead)?;
    let floor = 1e-3 * l0[0].max(1e-12);
    let mut pw = model.patch_embed.weight.to_vec();
    for r in 0..lead {
        let scale = 0.5 / (l0[r].max(0.0) + floor).sqrt();
        for j in 0..h {
            pw[r * h + j] = (u0[(j, r)] * scale) as f32;
        }
    }
    let dev = model.latent_tokens.device();
    model.patch_embed.weight = Tensor::from_f32(pw, [out, cin, kh, kw], &dev)?;

    // ---- pass 1: patch embeddings E [rows, We] (kept for pass 2) and the moments with Y
    let mut embeddings: Vec<Mat<f64>> = Vec::with_capacity(batches.len());
    let (mut patches, mut we, mut images) = (0, 0, 0);
    let mut cee = Mat::<f64>::zeros(0, 0);
    let mut cye = Mat::<f64>::zeros(0, 0);
    for (x, ym) in batches.iter().zip(&targets) {
        let (tokens, _) = model.image_tokens(x);
        let [n, p, w] = tokens.dims();
        if images == 0 {
            (patches, we) = (p, w);
            cee = Mat::zeros(w, w);
            cye = Mat::zeros(h, w);
        }
        let e_v = tokens.to_vec();
        let e = Mat::<f64>::from_fn(n * p, w, |i, j| e_v[i * w + j] as f64);
        cee += e.transpose() * &e;
        cye += ym.transpose() * &e;
        embeddings.push(e);
        images += n;
    }
    let rows = (images * patches) as f64;
    if images * patches < 4 * we {
        return Err(Error::InvalidArgument(format!(
            "fitting the linear path needs at least {} patches ({we} embedding channels × 4), got {} from {images} images",
            4 * we,
            images * patches
        )));
    }
    cee *= faer::Scale(1.0 / rows);
    cye *= faer::Scale(1.0 / rows);

    // ---- level 1: W = Cye Cee⁻¹ (ridge 1e-6 of the mean eigenvalue), U = top-k of W Cee Wᵀ
    let ridge = 1e-6 * (0..we).map(|i| cee[(i, i)]).sum::<f64>() / we as f64 + 1e-12;
    let eig = cee.self_adjoint_eigen(Side::Lower).map_err(|e| numeric(format!("{e:?}")))?;
    let (q, s) = (eig.U(), eig.S().column_vector());
    let inv =
        Mat::<f64>::from_fn(we, we, |i, j| (0..we).map(|r| q[(i, r)] * q[(j, r)] / (s[r].max(0.0) + ridge)).sum());
    let w = &cye * &inv;
    let fitted = &w * cye.transpose();
    let (u, captured) = top_eigenvectors(&fitted, k)?;
    let patch_in = u.transpose() * &w; // [k, We]

    // ---- pass 2: channels C [images, P·k]; level 2: principal components of C
    let pk = patches * k;
    let mut c = Mat::<f64>::zeros(images, pk);
    let mut first = 0;
    for e in &embeddings {
        // row (image, patch) of E · patch_inᵀ is that patch's k channels
        let ch = e * patch_in.transpose();
        for r in 0..ch.nrows() {
            for j in 0..k {
                c[(first + r / patches, (r % patches) * k + j)] = ch[(r, j)];
            }
        }
        first += e.nrows() / patches;
    }
    let mut m = c.transpose() * &c;
    m *= faer::Scale(1.0 / images as f64);
    let (v, lambda) = top_eigenvectors(&m, pk)?;
    let used = (t_max * d).min(pk);
    let mut to_tokens = vec![0.0f32; t_max * d * pk];
    let mut from_tokens = vec![0.0f32; pk * t_max * d];
    for r in 0..used {
        for j in 0..pk {
            to_tokens[r * pk + j] = v[(j, r)] as f32;
            from_tokens[j * t_max * d + r] = v[(j, r)] as f32;
        }
    }

    // ---- the error of the fitted code by tokens kept (per image: the patch residual plus the
    // dropped components)
    let energy: f64 = (0..h).map(|i| cyy[(i, i)]).sum(); // mean ‖y‖² per patch
    let patch_residual = (patches as f64 * (energy - captured.iter().sum::<f64>())).max(0.0);
    let values = (patches * h) as f64;
    let rms_by_tokens: Vec<f64> = (0..=t_max)
        .map(|j| {
            let dropped: f64 = lambda[(j * d).min(used)..].iter().map(|l| l.max(0.0)).sum();
            ((patch_residual + dropped) / values).sqrt()
        })
        .collect();

    // ---- write the path; zero the transformers' contributions
    let f =
        |m: &Mat<f64>| (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32)).collect::<Vec<_>>();
    let lp = model.linear_path.as_mut().expect("checked above");
    lp.patch_in.weight = Tensor::from_f32(f(&patch_in), [k, we], &dev)?;
    lp.patch_out.weight = Tensor::from_f32(f(&u), [h, k], &dev)?;
    lp.to_tokens.weight = Tensor::from_f32(to_tokens, [t_max * d, pk], &dev)?;
    lp.from_tokens.weight = Tensor::from_f32(from_tokens, [pk, t_max * d], &dev)?;
    zero_linear(&mut model.pre_quantizer_mlp);
    zero_linear(&mut model.decoder.ffn_2);
    Ok(LinearFit { images, rms_by_tokens })
}

/// The eigenvectors of the `n` largest eigenvalues of symmetric `a` (columns, decreasing) and
/// those eigenvalues.
fn top_eigenvectors(a: &Mat<f64>, n: usize) -> Result<(Mat<f64>, Vec<f64>)> {
    let eig = a.self_adjoint_eigen(Side::Lower).map_err(|e| numeric(format!("{e:?}")))?;
    let (u, s) = (eig.U(), eig.S().column_vector());
    let size = a.nrows();
    // faer sorts ascending: the last column is the largest
    let vecs = Mat::<f64>::from_fn(size, n, |i, j| u[(i, size - 1 - j)]);
    let vals = (0..n).map(|j| s[size - 1 - j]).collect();
    Ok((vecs, vals))
}

fn numeric(what: alloc::string::String) -> Error {
    Error::InvalidArgument(format!("fitting the linear path: eigendecomposition failed ({what})"))
}

fn zero_linear<B: Backend>(l: &mut crate::nn::Linear<B>) {
    let dev = l.weight.device();
    l.weight = Tensor::zeros(l.weight.dims(), &dev);
    if let Some(b) = &mut l.bias {
        *b = Tensor::zeros(b.dims(), &dev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};
    use crate::model::KarlConfig;
    use crate::train::synthetic::synthetic_image;
    type PixelBaseT = crate::model::base::PixelBase<Cpu<f32>>;

    fn batch(seed: u64, from: u64, n: usize, size: usize) -> Tensor<Cpu<f32>, 4> {
        let v: Vec<f32> = (0..n as u64).flat_map(|i| synthetic_image(seed, from + i, size).0).collect();
        Tensor::from_f32(v, [n, 3, size, size], &CpuDevice).unwrap()
    }

    /// L2 error per value of the model's own reconstruction from the first `t` tokens.
    fn rms_of_prefix(model: &Karl<Cpu<f32>>, x: &Tensor<Cpu<f32>, 4>, t: usize) -> f64 {
        let (tokens, _) = model.image_tokens(x);
        let enc = model.encode_latents(tokens, &vec![0; x.dims()[0]], model.config.max_latent_tokens);
        let z = model.quantize(enc.prequant).z_q.narrow(1, 0..t);
        use crate::model::base::BaseTokenizer;
        let out = model.base.decode(model.decode_latents(z, None)).to_vec();
        let want = x.to_vec();
        let se: f64 = out.iter().zip(&want).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        (se / want.len() as f64).sqrt()
    }

    #[test]
    fn the_fitted_model_reconstructs_as_the_fit_predicts_and_the_error_falls_with_the_prefix() {
        let mut c = KarlConfig::preset("karl_pixel_tiny").unwrap();
        c.linear_path = Some(4);
        let mut model = Karl::<Cpu<f32>>::new(c, &CpuDevice, 1).unwrap();
        let size = model.config.image_size;
        let batches: Vec<_> = (0..4).map(|b| batch(7, b * 32, 32, size)).collect();
        let fit = fit_linear_path(&mut model, &batches).unwrap();
        assert_eq!(fit.images, 128);
        assert_eq!(fit.rms_by_tokens.len(), model.config.max_latent_tokens + 1);
        assert!(fit.rms_by_tokens.windows(2).all(|w| w[1] <= w[0] + 1e-12), "{:?}", fit.rms_by_tokens);
        let (first, last) = (fit.rms_by_tokens[1], *fit.rms_by_tokens.last().unwrap());
        assert!(last < 0.75 * first, "the code must carry detail beyond its first token: {first} → {last}");
        // the model (transformers zeroed) decodes exactly the fitted code: measured = predicted
        let all: Vec<f32> = batches.iter().flat_map(|b| b.to_vec()).collect();
        let all = Tensor::from_f32(all, [128, 3, size, size], &CpuDevice).unwrap();
        for t in [1, 4, 16] {
            let got = rms_of_prefix(&model, &all, t);
            let want = fit.rms_by_tokens[t];
            assert!((got - want).abs() < 1e-3 + 1e-3 * want, "{t} tokens: measured {got}, predicted {want}");
        }
        // level 1 is as good as the best rank-k map of the patch pixels (top-k principal
        // components; the embedding's bias lets the fit be affine, so it may be better)
        let (patches, head) = (model.config.num_image_tokens(), 3 * 8 * 8);
        let pixel = PixelBaseT::new(8);
        let ys = pixel.patchify(&all).to_vec();
        let mut cyy = Mat::<f64>::zeros(head, head);
        for y in ys.chunks(head) {
            for i in 0..head {
                for j in 0..head {
                    cyy[(i, j)] += y[i] as f64 * y[j] as f64;
                }
            }
        }
        let (_, l) = top_eigenvectors(&cyy, head).unwrap();
        let rows = (128 * patches) as f64;
        let pca = (l[4..].iter().sum::<f64>() / rows / head as f64).sqrt();
        let full = *fit.rms_by_tokens.last().unwrap();
        eprintln!("top-4 PCA residual RMS {pca}, fitted {full}");
        assert!(full <= pca * 1.001 + 1e-6, "fitted level 1 {full} worse than top-4 PCA {pca}");
        // and on images it was not fitted to, the first tokens already beat the mean image
        let held = batch(8, 0, 64, size);
        assert!(rms_of_prefix(&model, &held, 16) < rms_of_prefix(&model, &held, 1));
    }

    #[test]
    fn fitting_refuses_models_without_a_path_and_too_few_patches() {
        let c = KarlConfig::preset("karl_pixel_tiny").unwrap();
        let mut plain = Karl::<Cpu<f32>>::new(c.clone(), &CpuDevice, 1).unwrap();
        let b = batch(7, 0, 2, c.image_size);
        let e = fit_linear_path(&mut plain, core::slice::from_ref(&b)).unwrap_err().to_string();
        assert!(e.contains("no linear path"), "{e}");
        let mut c = c;
        c.linear_path = Some(4);
        let mut lin = Karl::<Cpu<f32>>::new(c, &CpuDevice, 1).unwrap();
        let e = fit_linear_path(&mut lin, &[b]).unwrap_err().to_string();
        assert!(e.contains("at least 256 patches") && e.contains("got 32 from 2 images"), "{e}");
        assert!(fit_linear_path(&mut lin, &[]).unwrap_err().to_string().contains("at least one image"));
    }
}
