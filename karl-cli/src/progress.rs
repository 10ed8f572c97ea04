//! Progress rendering with indicatif (hidden when stderr is not a terminal or for one item).
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `n` items.
pub fn bar(n: usize, what: &str) -> ProgressBar {
    if n <= 1 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
