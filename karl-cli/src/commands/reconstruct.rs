//! `karl reconstruct`: `.karl` token files → PNG images (one decoder pass each).
use super::load;
use crate::args::ReconstructArgs;
use crate::device::BackendJob;
use crate::image_io::write_png;
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::Backend;
use karl_core::model::Tokens;

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
            let t = Tokens::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
            let img = tok.decode(std::slice::from_ref(&t)).with_context(|| format!("{}", path.display()))?.to_vec();
            let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let out = a.out.join(format!("{stem}.png"));
            write_png(&out, &img, size, size)?;
            pb.suspend(|| println!("{}\t{}\tkc {}", path.display(), out.display(), t.kc()));
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
