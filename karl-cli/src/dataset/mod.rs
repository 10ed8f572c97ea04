//! Dataset-scale tokenization: folders, file lists and tar shards in; token shards, a manifest
//! per process and resumable runs out; `--shard I/N` splits the work for any job scheduler.
mod inputs;
mod manifest;
mod run;

pub use inputs::ShardSpec;
pub use manifest::KcStats;
pub use run::run_shards;
