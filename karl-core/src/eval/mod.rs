//! Evaluation of a tokenizer on a folder of images (the paper's protocol, §4 of the spec):
//! settings and per-image result lines (`results.jsonl`, resumable), aggregation into a report
//! with the paper's tables (fixed / variable tokens, halting calibration), the exact budget
//! search baseline, the KARL-property harness (KC against known complexity levels) and the
//! dataset input path (centre crop, 8-bit reconstructions). The CLI renders the report and draws
//! the charts (karl-cli/src/report.rs, karl-cli/src/plot/).
pub mod image;
pub mod property;
pub mod report;
pub mod results;
pub mod search;
pub mod stats;

pub use image::{center_crop_chw, quantize_8bit};
pub use report::{EvalReport, Protocol, ReportInput, build_report};
pub use results::{ImageResult, Line, SearchTrace, Setting, Skipped, parse_results};
pub use search::{SearchOutcome, budget_steps, check_outcome, linear_search};
pub use stats::{CalibrationRow, Summary, calibration, spearman, summary};
