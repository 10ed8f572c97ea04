//! The exact-resume check of the stage-1 and stage-2 trainer tests: an event sink that records
//! each step's losses and can stop a run as Ctrl-C does, and the run / interrupt / resume /
//! compare protocol.
use crate::train::events::{EventSink, TrainEvent};
use crate::train::two_phase::StepLosses;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Records every step's losses; raises `stop` (as Ctrl-C does) once step `stop_after` is done.
pub struct StepRecorder<'a> {
    /// The losses of each step, in order.
    pub losses: Vec<StepLosses>,
    stop: Option<(u64, &'a AtomicBool)>,
}

impl<'a> StepRecorder<'a> {
    /// A recorder that raises `stop` after step `stop_after` (never when `None`).
    pub fn new(stop_after: Option<u64>, stop: &'a AtomicBool) -> Self {
        StepRecorder { losses: Vec::new(), stop: stop_after.map(|n| (n, stop)) }
    }
}

impl EventSink for StepRecorder<'_> {
    fn event(&mut self, e: &TrainEvent) {
        if let TrainEvent::Step { losses, step, .. } = e {
            self.losses.push(losses.clone());
            if let Some((n, flag)) = self.stop
                && *step >= n
            {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A 6-step run done twice through `run(dir, stop_after, resume)` (train in `dir`, or resume
/// the run there, stopping after `stop_after` steps when given; return the steps' losses):
/// uninterrupted in `full_dir`; in `resumed_dir` stopped after 3 steps (a checkpoint at the
/// stop), then resumed to the end. Asserts that the resumed run's total losses equal the
/// uninterrupted run's exactly, and returns the uninterrupted run's losses.
pub fn check_exact_resume(
    full_dir: &Path,
    resumed_dir: &Path,
    run: impl Fn(&Path, Option<u64>, bool) -> Vec<StepLosses>,
) -> Vec<StepLosses> {
    let full = run(full_dir, None, false);
    assert_eq!(full.len(), 6);
    assert!(full.iter().all(|l| l.total.is_finite()), "non-finite losses: {full:?}");
    let first = run(resumed_dir, Some(3), false);
    assert_eq!(first.len(), 3);
    let rest = run(resumed_dir, None, true);
    let joined: Vec<f64> = first.iter().chain(&rest).map(|l| l.total).collect();
    let expect: Vec<f64> = full.iter().map(|l| l.total).collect();
    assert_eq!(joined, expect, "losses after resuming differ from an uninterrupted run");
    full
}
