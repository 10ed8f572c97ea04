//! One function per subcommand, plus the shared model loading. The model-running commands are
//! generic over the backend ([`BackendJob`](crate::device::BackendJob)) and dispatched once on
//! `--device` by [`on_device`].
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
    let Some(path) = &m.model else {
        return karl_core::model::builtin::builtin_tokenizer::<B>(device).context("loading the built-in model");
    };
    karl_core::model::load::load_tokenizer::<B>(path, m.config.as_deref(), device)
        .with_context(|| format!("loading model {}", path.display()))
}
