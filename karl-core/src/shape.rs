//! Shape: runtime dimensions, broadcasting rules and strides.
use alloc::vec::Vec;
use core::fmt;

/// Runtime dimensions of a tensor (row-major).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims)
    }
}
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims)
    }
}

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape { dims: dims.into() }
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = alloc::vec![1usize; self.dims.len()];
        for i in (0..self.dims.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.dims[i + 1];
        }
        s
    }
    /// The dimensions as a fixed-size array (panics on a rank mismatch, which the typed
    /// `Tensor<B, D>` API rules out).
    pub fn dims<const N: usize>(&self) -> [usize; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.dims);
        out
    }
    /// Broadcast two shapes by numpy rules; `None` when they do not fit.
    pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        let r = a.rank().max(b.rank());
        let mut dims = alloc::vec![0; r];
        for (i, out) in dims.iter_mut().enumerate() {
            let da = if i + a.rank() >= r { a.dims[i + a.rank() - r] } else { 1 };
            let db = if i + b.rank() >= r { b.dims[i + b.rank() - r] } else { 1 };
            *out = if da == db {
                da
            } else if da == 1 {
                db
            } else if db == 1 {
                da
            } else {
                return None;
            };
        }
        Some(Shape { dims })
    }
    /// Size of (outer, dim, inner) around axis `dim`.
    pub fn split_at_dim(&self, dim: usize) -> (usize, usize, usize) {
        let outer = self.dims[..dim].iter().product();
        let inner = self.dims[dim + 1..].iter().product();
        (outer, self.dims[dim], inner)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape { dims: v }
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape { dims: v.to_vec() }
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape { dims: v.to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn broadcast_rules() {
        let a = Shape::new([2, 1, 3]);
        let b = Shape::new([4, 1]);
        assert_eq!(Shape::broadcast(&a, &b).unwrap().dims, [2, 4, 3]);
        assert!(Shape::broadcast(&Shape::new([2]), &Shape::new([3])).is_none());
        assert_eq!(Shape::new([2, 3, 4]).strides(), [12, 4, 1]);
    }
}
