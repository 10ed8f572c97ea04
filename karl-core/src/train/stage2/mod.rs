//! Stage 2, full finetuning (spec §2.4–2.5): everything trains, the reconstruction loss is
//! pixel L1 + LPIPS-VGG + an adaptively weighted PatchGAN term, and a bank of discriminators
//! trains beside the model with its own optimiser.
pub mod discriminator;
pub mod loss;
pub mod schedule;
#[cfg(feature = "std")]
pub mod trainer;

pub use discriminator::{
    BANK_SIZE, DiscriminatorBank, DiscriminatorStats, GanEntry, LEAKY_SLOPE, NDF, NLayerDiscriminator, bank_index,
};
pub use loss::{GanSetting, GanStep, PhaseGan, Stage2Forward, Stage2Report, last_layer, stage2_forward};
pub use schedule::GanSchedule;
#[cfg(feature = "std")]
pub use trainer::{Stage2Config, Stage2State, Stage2Step, Stage2Trainer};
