//! One function per subcommand, plus the shared model loading.
mod complexity;
mod convert;
mod eval;
mod info;
mod metrics;
mod reconstruct;
mod tokenize;
mod train;

use crate::args::{Cli, Command, ModelArgs};
use anyhow::{Context, Result};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::Tokenizer;

/// The backend the CLI runs on.
pub type B = Cpu<f32>;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tokenize(a) => tokenize::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Metrics(a) => metrics::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Complexity(a) => complexity::run(a),
    }
}

/// Loads the model the arguments name.
pub fn load(m: &ModelArgs) -> Result<Tokenizer<B>> {
    let Some(path) = &m.model else {
        return karl_core::model::builtin::builtin_tokenizer::<B>(&CpuDevice).context("loading the built-in model");
    };
    karl_core::model::load::load_tokenizer::<B>(path, m.config.as_deref(), &CpuDevice)
        .with_context(|| format!("loading model {}", path.display()))
}
