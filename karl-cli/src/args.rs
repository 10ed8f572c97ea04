//! Command-line arguments (clap derive); every flag is documented here.
use clap::{Args, Parser, Subcommand};
use karl_core::Precision;
use karl_device::Device;
use std::path::PathBuf;

/// KARL: single-pass adaptive image tokenization. The number of tokens an image needs to reach
/// a requested quality is an estimate of its Kolmogorov complexity.
#[derive(Parser, Debug)]
#[command(name = "karl", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Which model to use, and where to run it.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: a directory with config.json + weights.safetensors, a .safetensors or .pth file
    /// (config.json beside it, or an official checkpoint whose preset is recognised).
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,
    /// A config JSON overriding the one beside the weights.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Compute device: cpu, or cuda / rocm / wgpu when karl was built with that feature.
    #[arg(long, default_value = "cpu", value_parser = crate::device::parser())]
    pub device: Device,
    /// Compute precision on a GPU device: f32, f16 (cuda, rocm, wgpu with SHADER_F16) or bf16
    /// (cuda, rocm). Half precision stores tensors in 16 bits and accumulates sums in f32; the
    /// CPU backend is f32 only.
    #[arg(long, default_value_t)]
    pub precision: Precision,
    /// VAE-base models: how the latent is drawn from the VAE posterior. `mode` (the default
    /// unless the model's config says otherwise) takes the mean and is deterministic; `sample`
    /// draws mean + std·noise as the official code does on every forward (the official code has
    /// no `mode`), the noise seeded with --vae-seed at every encode call.
    #[arg(long, value_parser = ["mode", "sample"])]
    pub vae_latent: Option<String>,
    /// Seed of the noise of `--vae-latent sample`.
    #[arg(long, default_value_t = 0, requires = "vae_latent")]
    pub vae_seed: u64,
}

/// The encoding flags of `tokenize` and `complexity`.
#[derive(Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Desired reconstruction error ε (mean absolute error in [0,1]); smaller = more tokens.
    #[arg(long, short = 'q', default_value_t = 0.05)]
    pub quality: f32,
    /// Token budget T (1..=512; default 256, or the model's maximum if smaller).
    #[arg(long, short = 'b')]
    pub budget: Option<usize>,
    /// Refuse images above this many pixels (width × height; for tiles and --map, the grid
    /// padded to whole tiles); checked from the image header, before decoding.
    #[arg(long, default_value_t = karl_core::model::tiles::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

impl EncodeArgs {
    /// --budget, or 256 capped at the model's `max_latent_tokens`.
    pub fn budget_or_default(&self, max_latent_tokens: usize) -> usize {
        self.budget.unwrap_or(256.min(max_latent_tokens))
    }
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tokenize images: one .karl file per image, and the KC (token count) per image.
    Tokenize(TokenizeArgs),
    /// Decode .karl token files back to PNG images.
    Reconstruct(ReconstructArgs),
    /// Show a model's configuration, parameter count and size.
    Info(InfoArgs),
    /// Convert an official PyTorch checkpoint (.pth) to safetensors + config.json.
    Convert(ConvertArgs),
    /// Image-quality metrics between two images (L1, MSE, PSNR, SSIM, LPIPS).
    Metrics(MetricsArgs),
    /// Train a KARL model (two-phase; stage 1, or stage 2 full finetuning with --stage 2) with
    /// checkpoints and exact resume.
    Train(TrainArgs),
    /// Evaluate on a folder of images: tokens used, passes, L1/MSE/PSNR/SSIM/LPIPS per setting,
    /// halting calibration, optional exact budget search; resumable (results.jsonl).
    Eval(EvalArgs),
    /// Rank images by estimated complexity (KC = tokens used at ε), with CSV and contact sheet.
    Complexity(ComplexityArgs),
}

/// `karl tokenize`.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// Images, directories (walked recursively for PNG/JPEG/WebP/BMP) or WebDataset tar shards
    /// (`train-{000000..000146}.tar`: brace ranges are expanded, quote them).
    #[arg(required_unless_present = "list")]
    pub inputs: Vec<PathBuf>,
    /// Also read the inputs listed in this file, one path per line (`#` starts a comment line).
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Write token shards (`.karlshard`, many images each, with a manifest) into --out instead
    /// of one .karl file per image; implied by tar inputs, --list, --shard and --shard-size.
    #[arg(long)]
    pub shards: bool,
    /// This process's part of the work, I/N (0 ≤ I < N): the input shards and chunks of loose
    /// images, in name order, at positions ≡ I mod N. Run N processes (a Slurm array, a
    /// Kubernetes Indexed Job) with the same arguments and I = 0 … N−1.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::dataset::ShardSpec>,
    /// Loose images per output shard (tar inputs give one output shard each).
    #[arg(long, value_name = "K")]
    pub shard_size: Option<usize>,
    /// Images of the model's size per encoder pass when writing shards.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Fixed-length mode with N tokens (no halting); same as --budget N --fixed.
    #[arg(long, conflicts_with = "fixed")]
    pub tokens: Option<usize>,
    /// Fixed-length mode: keep all budget tokens.
    #[arg(long)]
    pub fixed: bool,
    /// Directory for the .karl files (default: beside each image) or the token shards.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Print one JSON object per image: image, budget, quality, quality_bin, kc, positions, codes.
    #[arg(long)]
    pub json: bool,
    /// Also decode and write reconstructions (PNG) here; adds recon_l1 to the output.
    #[arg(long)]
    pub reconstruct: Option<PathBuf>,
    /// Require images at the model size (no tiles, no resizing).
    #[arg(long, conflicts_with = "resize")]
    pub no_resize: bool,
    /// Resize (shorter side to the model size, antialiased bicubic) + centre crop, as the
    /// official preprocessing, instead of tokenizing other sizes as a grid of model-size tiles.
    #[arg(long)]
    pub resize: bool,
}

/// `karl reconstruct`.
#[derive(Args, Debug)]
pub struct ReconstructArgs {
    /// .karl token files or token shards (.karlshard: every image, or those of --key).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Only the image with this key from each token shard (repeatable); the PNG is named after
    /// the key.
    #[arg(long)]
    pub key: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output directory for the PNGs.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Refuse tiled token files whose grid exceeds this many pixels.
    #[arg(long, default_value_t = karl_core::model::tiles::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// `karl info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A model path, a preset name (karl_small, ...), `builtin`, or a token shard
    /// (`.karlshard`: its images, failures and KC histogram).
    #[arg(default_value = "builtin")]
    pub model: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Compute device the model is loaded on: cpu, or cuda / rocm / wgpu when karl was built
    /// with that feature.
    #[arg(long, default_value = "cpu", value_parser = crate::device::parser())]
    pub device: Device,
    /// Compute precision on a GPU device: f32, f16 or bf16 (see `karl tokenize --help`).
    #[arg(long, default_value_t)]
    pub precision: Precision,
}

/// `karl convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The official checkpoint.
    pub checkpoint: PathBuf,
    /// Output directory (weights.safetensors + config.json).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Which entry of the checkpoint dict to take (default: ema, else model).
    #[arg(long)]
    pub entry: Option<String>,
    /// Config JSON to use (default: recognised from the key shapes).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `karl metrics`.
#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Reference image.
    pub a: PathBuf,
    /// Distorted image.
    pub b: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// LPIPS weights (safetensors in the lpips package layout, AlexNet or VGG).
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Feed LPIPS raw [0,1] inputs (KARL's own evaluation) instead of [-1,1].
    #[arg(long)]
    pub lpips_unit_range: bool,
}

/// The budget search `karl eval --search` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchMode {
    /// Linear search from the smallest budget (one encoder + decoder pass per budget tried).
    Exact,
}

/// `karl eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Dataset directory (walked recursively for PNG/JPEG/WebP/BMP).
    #[arg(long)]
    pub data: PathBuf,
    /// Adaptive settings: target L1 ε values (comma-separated), each with budget --budget.
    #[arg(long, short = 'q', value_delimiter = ',', default_values_t = [0.03, 0.05, 0.09])]
    pub quality: Vec<f64>,
    /// Fixed-length settings: token counts N (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [32, 64, 128, 256])]
    pub tokens: Vec<usize>,
    /// Skip the fixed-length settings.
    #[arg(long)]
    pub no_fixed: bool,
    /// Token budget T of the adaptive settings (and the largest budget of the search); default
    /// 256, or the model's maximum if smaller.
    #[arg(long, short = 'b')]
    pub budget: Option<usize>,
    /// LPIPS weights (safetensors in the lpips package layout); LPIPS is skipped without them.
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Feed LPIPS raw [0,1] inputs (KARL's own evaluation) instead of [-1,1].
    #[arg(long)]
    pub lpips_unit_range: bool,
    /// Report directory: results.jsonl, report.json, report.md and PNG charts.
    #[arg(long, short = 'o', default_value = "karl-eval")]
    pub out: PathBuf,
    /// Resize the shorter side to the model size before the centre crop (custom-image path);
    /// default: centre crop without resizing (the dataset protocol; smaller images are skipped).
    #[arg(long)]
    pub resize: bool,
    /// Continue the run whose results.jsonl is in --out, skipping (image, setting) pairs done.
    #[arg(long)]
    pub resume: bool,
    /// Also find, per image and ε, the smallest fixed budget meeting ε by search.
    #[arg(long, value_enum)]
    pub search: Option<SearchMode>,
    /// Budget step of the search.
    #[arg(long, default_value_t = 16)]
    pub search_step: usize,
}

/// `karl complexity`.
#[derive(Args, Debug)]
pub struct ComplexityArgs {
    /// Images or directories (walked recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Write the rows (image, kc, l1) sorted by KC to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write a contact sheet PNG of thumbnails ordered by KC with the count under each.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
    /// Thumbnail size in pixels on the contact sheet.
    #[arg(long, default_value_t = 96)]
    pub thumb: usize,
    /// Thumbnails per row on the contact sheet.
    #[arg(long, default_value_t = 8)]
    pub columns: usize,
    /// At most this many thumbnails (evenly spread over the KC order).
    #[arg(long, default_value_t = 256)]
    pub sheet_max: usize,
    /// Write a complexity map: the image at its full size as a grid of model-size tiles, each
    /// tinted by its KC, with a colour bar. A `.png` path for one image; for several, a
    /// directory that gets `<name>-map.png` per image.
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Write a figure PNG: for a few images (evenly spread over the KC order, at most
    /// --figure-max), the input at the model size and its reconstruction at each of
    /// --figure-qualities, with the token count and the achieved L1 under each.
    #[arg(long)]
    pub figure: Option<PathBuf>,
    /// The ε values of the figure's columns.
    #[arg(long, value_delimiter = ',', default_value = "0.03,0.06,0.12")]
    pub figure_qualities: Vec<f32>,
    /// At most this many images (rows) in the figure.
    #[arg(long, default_value_t = 5)]
    pub figure_max: usize,
}

/// `karl train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model configuration JSON.
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Model preset (e.g. karl_pixel_tiny, karl_tiny).
    #[arg(long)]
    pub preset: Option<String>,
    /// Training images: a directory (recursive), `synthetic` (soft blobs, level = blob count)
    /// or `synthetic-separated` (distinct blobs: the level stays a complexity knob up to the
    /// last level).
    #[arg(long, default_value = "synthetic")]
    pub data: String,
    /// Share of synthetic images mixed into a directory's batches (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub mix_synthetic: f64,
    /// Random-resized-crop area range MIN,MAX as a share of the image (official 0.8,1.0).
    #[arg(long, value_delimiter = ',', default_values_t = [0.8, 1.0])]
    pub crop_scale: Vec<f64>,
    /// Run directory (checkpoints, metrics.jsonl).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Total steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Set when --steps was given explicitly (used with --resume).
    #[arg(skip)]
    pub steps_given: bool,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Continue the run in this directory exactly where its last checkpoint stopped.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Peak learning rate (default 2e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warmup steps (default steps/10).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Checkpoint every K steps (0: only at the end and on Ctrl-C).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// EMA decay of the weights kept for inference.
    #[arg(long, default_value_t = 0.9999)]
    pub ema_decay: f64,
    /// Phase-(b) halting labels: `official` (the paper's procedure) or `min_budget` (halt
    /// every token beyond the smallest prefix whose error reaches ε; see the README).
    #[arg(long, value_enum, default_value_t = HaltingLabelsArg::Official)]
    pub halting_labels: HaltingLabelsArg,
    /// min_budget: prefix lengths at which each image's error curve is measured, ascending
    /// (default 1,2,3,4,6,8,12,16,24,32,… up to the phase-(b) budget).
    #[arg(long, value_delimiter = ',')]
    pub ladder: Option<Vec<usize>>,
    /// min_budget: how phase (a) trains from prefixes: `drawn` (one prefix per step, its length
    /// from --budgets-a), `ladder` (every ladder prefix, equal weights) or `ladder_by_length`
    /// (every ladder prefix, weighted by its length).
    #[arg(long, value_enum, default_value_t = PrefixLossArg::Drawn)]
    pub prefix_loss: PrefixLossArg,
    /// Phase-(a) budgets drawn uniformly (default: the official 1/16 steps of the phase-(b)
    /// budget; with min_budget, the ladder).
    #[arg(long, value_delimiter = ',')]
    pub budgets_a: Option<Vec<usize>>,
    /// Models with a linear token path (config `linear_path`): fit it to this many training
    /// images before the first step (principal components; the transformers' outputs start at
    /// zero), so the tokens carry an ordered code from step 0. 0 keeps the random init.
    #[arg(long, default_value_t = 2048)]
    pub linear_fit: usize,
    /// Training stage: 1 (latent distillation, base tokenizer frozen) or 2 (full finetuning
    /// with pixel L1 + LPIPS-VGG + PatchGAN discriminators; needs --init and --lpips-weights).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: u8,
    /// Stage 2: the stage-1 result to finetune: a checkpoint directory (its EMA weights, as
    /// officially) or a model directory (config.json + weights.safetensors).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Stage 2: LPIPS-VGG weights (lpips' vgg.pth, a safetensors state dict, or the golden
    /// int8 + scale file); needed again with --resume.
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Stage 2: steps per epoch of the GAN schedule (default: --steps / 400, the official run's
    /// 400 epochs).
    #[arg(long)]
    pub steps_per_epoch: Option<u64>,
    /// Stage 2: GAN weight 0 through epoch A, the low weight through epoch B, the high weight
    /// after (official 20,100).
    #[arg(long, value_delimiter = ',', default_values_t = [20, 100])]
    pub gan_epochs: Vec<u64>,
    /// Stage 2: the low and high GAN weights (official 0.2,0.8).
    #[arg(long, value_delimiter = ',', default_values_t = [0.2, 0.8])]
    pub gan_weights: Vec<f64>,
    /// Stage 2: once the GAN is on, the generator steps once every K steps and the
    /// discriminators the other K − 1 (official 9).
    #[arg(long, default_value_t = 9)]
    pub gan_period: u64,
    /// Compute device: cpu, or cuda / rocm / wgpu when karl was built with that feature.
    #[arg(long, default_value = "cpu", value_parser = crate::device::parser())]
    pub device: Device,
}

/// `--halting-labels`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum HaltingLabelsArg {
    /// Halt the tokens beyond a drawn budget, conditioned on its error (official).
    Official,
    /// Halt the tokens beyond the smallest prefix whose error reaches ε.
    MinBudget,
}

/// `--prefix-loss`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum PrefixLossArg {
    /// One prefix per step (nested dropout).
    Drawn,
    /// Every ladder prefix, equal weights.
    Ladder,
    /// Every ladder prefix, weighted by its length.
    LadderByLength,
}

impl From<PrefixLossArg> for karl_core::train::halting_labels::PrefixLoss {
    fn from(a: PrefixLossArg) -> Self {
        match a {
            PrefixLossArg::Drawn => Self::Drawn,
            PrefixLossArg::Ladder => Self::Ladder,
            PrefixLossArg::LadderByLength => Self::LadderByLength,
        }
    }
}

impl From<HaltingLabelsArg> for karl_core::train::halting_labels::HaltingLabels {
    fn from(a: HaltingLabelsArg) -> Self {
        match a {
            HaltingLabelsArg::Official => Self::Official,
            HaltingLabelsArg::MinBudget => Self::MinBudget,
        }
    }
}
