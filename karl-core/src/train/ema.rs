//! Exponential moving average of the weights (decay 0.9999 officially), kept on the host by
//! parameter path; used for inference and saved with checkpoints. Unlike the official code it
//! is not reset every epoch.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// EMA weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    /// Decay.
    pub decay: f64,
    /// Averaged values by path.
    pub weights: BTreeMap<String, Vec<f32>>,
}

impl Ema {
    /// An empty EMA; the first update copies the weights.
    pub fn new(decay: f64) -> Self {
        Ema { decay, weights: BTreeMap::new() }
    }
    /// `ema = decay·ema + (1 − decay)·w`.
    pub fn update(&mut self, path: &str, w: &[f32]) {
        let d = self.decay as f32;
        match self.weights.get_mut(path) {
            Some(e) => e.iter_mut().zip(w).for_each(|(e, &x)| *e = d * *e + (1.0 - d) * x),
            None => {
                self.weights.insert(path.into(), w.to_vec());
            }
        }
    }
}
