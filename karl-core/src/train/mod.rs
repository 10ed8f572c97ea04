//! Training: the two-phase step, losses, AdamW with clipping, schedule, EMA, ε curriculum, and
//! (with `std`) the trainer that checkpoints and resumes.
#[cfg(feature = "std")]
pub mod checkpoint;
pub mod curriculum;
pub mod ema;
pub mod events;
pub mod halting_labels;
pub mod losses;
pub mod min_budget;
pub mod optim;
pub mod params;
#[cfg(feature = "std")]
pub(crate) mod run;
pub mod schedule;
pub mod stage2;
pub mod synthetic;
#[cfg(feature = "std")]
pub mod trainer;
pub mod two_phase;
