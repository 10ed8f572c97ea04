//! Fuzz body of the `config.json` reader.
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::config::MAX_PARAMS;
use karl_core::model::{Karl, KarlConfig};

/// Accepted configs whose parameter bound is at most this are built, to check the bound
/// against the real parameter count (larger ones would slow every execution down).
const BUILD_UP_TO_PARAMS: u128 = 200_000;

/// Parses `data` as a model config. A config that is accepted has a parameter bound within
/// [`MAX_PARAMS`], reads back from its own JSON, and, when small, builds a model with at most
/// that many parameters.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(c) = KarlConfig::from_json(text) else { return };
    let bound = c.param_bound();
    assert!(bound <= MAX_PARAMS as u128, "accepted a config of up to {bound} parameters");
    let json = serde_json::to_string(&c).expect("a config serialises");
    let back = KarlConfig::from_json(&json).expect("a config that was accepted reads back");
    assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
    if bound <= BUILD_UP_TO_PARAMS {
        let model = Karl::<Cpu<f32>>::new(c, &CpuDevice, 0).expect("an accepted config builds");
        let real = karl_core::nn::num_params(&model) as u128;
        assert!(real <= bound, "{real} parameters, above the bound {bound}");
    }
}
