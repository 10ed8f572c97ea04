//! Layers and the `Module` trait: parameters named by dotted paths equal to the official
//! checkpoint keys, visited for saving, strict loading, optimisers and EMA.
mod attention;
mod batch_norm;
mod conv;
mod linear;
mod module;
mod norm;

pub use attention::{MultiheadAttention, ResidualAttentionBlock, Transformer};
pub use batch_norm::{BN_MOMENTUM, BatchNorm2d, BatchStats, batch_stats};
pub use conv::Conv2d;
pub use linear::Linear;
pub use module::{Module, ParamInfo, join as join_path, load_module, module_tensors, num_params};
pub use norm::{GroupNorm, LayerNorm};
