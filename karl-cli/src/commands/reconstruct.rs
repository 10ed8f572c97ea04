//! `karl reconstruct`: `.karl` token files → PNG images (one decoder pass per image or tile;
//! tiled files are stitched back at the image's full size).
use super::load;
use crate::args::ReconstructArgs;
use crate::device::BackendJob;
use crate::image_io::{file_stem, write_png};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::Backend;
use karl_core::model::TokenFile;

/// `karl reconstruct` on backend `B`.
impl BackendJob for ReconstructArgs {
    type Output = ();
    fn run<B: Backend>(self, device: &B::Device) -> Result<()> {
        run::<B>(self, device)
    }
}

fn run<B: Backend>(a: ReconstructArgs, device: &B::Device) -> Result<()> {
    let tok = load::<B>(&a.model, device)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let size = tok.model.config.image_size;
    let pb = bar(a.inputs.len(), "decoding");
    let mut failures = 0;
    for path in &a.inputs {
        let r = (|| -> Result<()> {
            let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
            let file = TokenFile::from_bytes(&bytes, a.max_pixels).with_context(|| format!("{}", path.display()))?;
            let out = a.out.join(format!("{}.png", file_stem(path)));
            let kc = match &file {
                TokenFile::Single(t) => {
                    let img =
                        tok.decode(std::slice::from_ref(t)).with_context(|| format!("{}", path.display()))?.to_vec();
                    write_png(&out, &img, size, size)?;
                    t.kc()
                }
                TokenFile::Tiled(t) => {
                    let img = tok.decode_tiled(t, a.max_pixels).with_context(|| format!("{}", path.display()))?;
                    write_png(&out, &img, t.grid.width as usize, t.grid.height as usize)?;
                    t.kc()
                }
            };
            pb.suspend(|| println!("{}\t{}\tkc {kc}", path.display(), out.display()));
            Ok(())
        })();
        if let Err(e) = r {
            failures += 1;
            pb.suspend(|| eprintln!("error: {e:#}"));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if failures > 0 {
        bail!("{failures} of {} token files failed", a.inputs.len());
    }
    Ok(())
}
