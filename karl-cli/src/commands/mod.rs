//! One function per subcommand, plus the shared model loading. The model-running commands are
//! generic over the backend ([`BackendJob`](crate::device::BackendJob)) and dispatched once on
//! `--device` by [`on_device`].

/// Makes a command's arguments a [`BackendJob`](crate::device::BackendJob) whose body is the
/// command's `fn $body<B: Backend>(args, device: &B::Device) -> Result<()>` on backend
/// `$backend` (`B`, or a decorator of it such as `Autodiff<B>`).
macro_rules! backend_job {
    ($(#[$attr:meta])* $args:ty => $body:ident::<$backend:ty>) => {
        $(#[$attr])*
        impl $crate::device::BackendJob for $args {
            type Output = ();
            type Error = anyhow::Error;
            fn run<B: karl_core::Backend>(self, device: &B::Device) -> anyhow::Result<()> {
                $body::<$backend>(self, device)
            }
        }
    };
}

mod complexity;
mod convert;
mod eval;
mod info;
mod metrics;
mod reconstruct;
mod tokenize;
mod train;

use crate::args::{Cli, Command, ModelArgs};
use crate::device::on_device;
use anyhow::{Context, Result};
use karl_core::cpu::Cpu;
use karl_core::model::Tokenizer;
use karl_core::model::vae::LatentDraw;
use karl_core::{Backend, Precision};

/// The backend of the commands that always run on the CPU (convert, metrics).
pub type CpuBackend = Cpu<f32>;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tokenize(a) => on_device(a.model.device, a.model.precision, a),
        Command::Reconstruct(a) => on_device(a.model.device, a.model.precision, a),
        Command::Info(a) if karl_core::model::shard_file::is_shard(std::path::Path::new(&a.model)) => info::shard(&a),
        Command::Info(a) => on_device(a.device, a.precision, a),
        Command::Convert(a) => convert::run(a),
        Command::Metrics(a) => metrics::run(a),
        // Training is f32: the optimiser state and updates need its range and precision.
        Command::Train(a) => on_device(a.device, Precision::F32, a),
        Command::Eval(a) => on_device(a.model.device, a.model.precision, a),
        Command::Complexity(a) => on_device(a.model.device, a.model.precision, a),
    }
}

/// Loads the model the arguments name onto `device`.
pub fn load<B: Backend>(m: &ModelArgs, device: &B::Device) -> Result<Tokenizer<B>> {
    let mut tok = match &m.model {
        None => karl_core::model::builtin::builtin_tokenizer::<B>(device).context("loading the built-in model")?,
        Some(path) => karl_core::model::load::load_tokenizer::<B>(path, m.config.as_deref(), device)
            .with_context(|| format!("loading model {}", path.display()))?,
    };
    if let Some(draw) = latent_draw(m) {
        tok.model.set_latent_draw(draw).context("--vae-latent")?;
    }
    Ok(tok)
}

/// The VAE latent draw `--vae-latent` / `--vae-seed` ask for (None: the model config's).
fn latent_draw(m: &ModelArgs) -> Option<LatentDraw> {
    match m.vae_latent.as_deref()? {
        "sample" => Some(LatentDraw::Sample { seed: m.vae_seed }),
        _ => Some(LatentDraw::Mode),
    }
}
