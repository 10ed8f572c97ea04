//! The `Module` trait (visit parameters by dotted path), strict loading that reports every
//! missing, unexpected and mis-shaped key at once, and export to host tensors.
use crate::backend::Backend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Joins a prefix and a name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Something holding named parameters.
pub trait Module<B: Backend> {
    /// Calls `f(path, tensor)` for every parameter under `prefix`.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor));
    /// Calls `f(path, tensor)` for every parameter, mutably.
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor));
}

impl<B: Backend, const D: usize> Module<B> for Tensor<B, D> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor)) {
        f(prefix, &self.primitive)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor)) {
        f(prefix, &mut self.primitive)
    }
}

impl<B: Backend, M: Module<B>> Module<B> for Option<M> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor)) {
        if let Some(m) = self {
            m.visit(prefix, f)
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor)) {
        if let Some(m) = self {
            m.visit_mut(prefix, f)
        }
    }
}

impl<B: Backend, M: Module<B>> Module<B> for Vec<M> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor)) {
        for (i, m) in self.iter().enumerate() {
            m.visit(&join(prefix, &i.to_string()), f)
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor)) {
        for (i, m) in self.iter_mut().enumerate() {
            m.visit_mut(&join(prefix, &i.to_string()), f)
        }
    }
}

/// Implements `Module` for a struct by listing `field => "key"` pairs (the key is the
/// checkpoint name of that field). Type parameters after the backend, `Name<L, M> { .. }`, are
/// modules themselves.
#[macro_export]
macro_rules! impl_module {
    ($ty:ident $(<$($p:ident),+>)? { $($field:ident => $key:expr),* $(,)? }) => {
        impl<B: $crate::backend::Backend $($(, $p: $crate::nn::Module<B>)+)?> $crate::nn::Module<B>
            for $ty<B $($(, $p)+)?>
        {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor)) {
                $( $crate::nn::Module::<B>::visit(&self.$field, &$crate::nn::join_path(prefix, $key), f); )*
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor)) {
                $( $crate::nn::Module::<B>::visit_mut(&mut self.$field, &$crate::nn::join_path(prefix, $key), f); )*
            }
        }
    };
}

/// Name and shape of a parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// Dotted path.
    pub path: String,
    /// Shape.
    pub shape: Shape,
}

/// Every parameter's host value, by path.
pub fn module_tensors<B: Backend, M: Module<B>>(m: &M) -> Vec<(String, TensorData)> {
    let mut out = Vec::new();
    m.visit("", &mut |p, t| out.push((p.to_string(), B::float_into_data(t))));
    out
}

/// Total number of parameter values.
pub fn num_params<B: Backend, M: Module<B>>(m: &M) -> usize {
    let mut n = 0;
    m.visit("", &mut |_, t| n += B::float_shape(t).numel());
    n
}

/// Loads `tensors` into `m`. Keys starting with one of `skip_prefixes` are ignored. In strict
/// mode one error lists every missing, unexpected and mis-shaped key.
pub fn load_module<B: Backend, M: Module<B>>(
    m: &mut M,
    tensors: Vec<(String, TensorData)>,
    skip_prefixes: &[&str],
    strict: bool,
    device: &B::Device,
) -> Result<()> {
    let mut given: BTreeMap<String, TensorData> =
        tensors.into_iter().filter(|(k, _)| !skip_prefixes.iter().any(|p| k.starts_with(p))).collect();
    let mut expected: Vec<(String, Shape)> = Vec::new();
    m.visit("", &mut |p, t| expected.push((p.to_string(), B::float_shape(t))));
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (k, s) in &expected {
        match given.get(k) {
            None => missing.push(k.clone()),
            Some(d) if &d.shape != s => misshaped.push(format!("{k}: checkpoint {} vs model {s}", d.shape)),
            Some(_) => {}
        }
    }
    let known: BTreeMap<&str, ()> = expected.iter().map(|(k, _)| (k.as_str(), ())).collect();
    let unexpected: Vec<String> = given.keys().filter(|k| !known.contains_key(k.as_str())).cloned().collect();
    if !misshaped.is_empty() || (strict && (!missing.is_empty() || !unexpected.is_empty())) {
        let mut msg = String::new();
        let mut part = |title: &str, v: &[String]| {
            if !v.is_empty() {
                msg.push_str(&format!("{} {title}: [{}]; ", v.len(), v.join(", ")));
            }
        };
        part("missing keys", &missing);
        part("unexpected keys", &unexpected);
        part("mis-shaped keys", &misshaped);
        return Err(Error::Weights(msg.trim_end_matches("; ").to_string()));
    }
    let mut bad = Vec::new();
    m.visit_mut("", &mut |p, t| {
        if let Some(d) = given.remove(p) {
            if d.to_f64_vec().iter().any(|v| !v.is_finite()) {
                bad.push(p.to_string());
            }
            *t = B::float_from_data(&d, device);
        }
    });
    if !bad.is_empty() {
        return Err(Error::Weights(format!("non-finite values in {} keys: [{}]", bad.len(), bad.join(", "))));
    }
    Ok(())
}
