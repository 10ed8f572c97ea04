//! Fuzz body of the safetensors reader and the strict model loader.
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::KarlConfig;
use karl_core::model::load::{infer_config, tokenizer_from_bytes};
use karl_core::record::{read_safetensors_bytes, safetensors_bytes};
use std::sync::OnceLock;

/// The config the strict loader checks fuzzed weights against: the C API target's tiny model.
pub(crate) fn tiny_config_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_string(&karl_ffi::fuzzing::tiny_config()).expect("a config serialises"))
}

/// Reads `data` as safetensors; what reads writes back and reads again to the same tensors;
/// the preset recognition and the strict loader (keys and shapes against the tiny config) then
/// accept or refuse it without panicking.
pub fn safetensors(data: &[u8]) {
    let Ok(tensors) = read_safetensors_bytes(data) else { return };
    let bytes = safetensors_bytes(&tensors, None).expect("tensors that were read can be written");
    let back = read_safetensors_bytes(&bytes).expect("written tensors read back");
    assert_eq!(back.len(), tensors.len());
    for ((n0, t0), (n1, t1)) in tensors.iter().zip(&back) {
        assert!(n0 == n1 && t0.dtype == t1.dtype && t0.shape == t1.shape && t0.to_le_bytes() == t1.to_le_bytes());
    }
    let _ = infer_config(&tensors).map(|c: KarlConfig| c.validate());
    let _ = tokenizer_from_bytes::<Cpu<f32>>(data, Some(tiny_config_json()), &CpuDevice);
}
