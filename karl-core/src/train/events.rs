//! Training events: the core never prints; a sink (the CLI's progress bar and metrics log)
//! renders them.
use super::two_phase::StepLosses;
use alloc::string::String;

/// Something that happened during training.
// One event per step: the size of `Step` does not matter, boxing it would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// A step finished.
    Step {
        /// Step number (1-based, after the update).
        step: u64,
        /// Total steps planned.
        total: u64,
        /// Loss terms.
        losses: StepLosses,
        /// Learning rate used.
        lr: f64,
        /// Gradient norm before clipping.
        grad_norm: f64,
        /// Phase-(a) budget.
        budget_a: usize,
        /// Seconds the step took.
        seconds: f64,
        /// Images in the batch.
        batch: usize,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// Step.
        step: u64,
        /// Where.
        path: String,
    },
}

/// Receives events.
pub trait EventSink {
    /// Handles one event.
    fn event(&mut self, e: &TrainEvent);
}

/// Ignores events.
pub struct NoEvents;
impl EventSink for NoEvents {
    fn event(&mut self, _: &TrainEvent) {}
}
