//! The graph: nodes with parents and a backward step, gradients keyed by node, and the
//! reverse-order walk.
use crate::backend::{Backend, Binary, Reduce};
use crate::shape::Shape;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One op's backward: maps the output gradient to one optional gradient per input.
pub(crate) trait Step<B: Backend>: Send + Sync {
    fn backward(&self, grad: B::FloatTensor) -> Vec<Option<B::FloatTensor>>;
}

pub(crate) struct Node<B: Backend> {
    id: u64,
    parents: Vec<Option<Arc<Node<B>>>>,
    step: Option<Box<dyn Step<B>>>,
}

/// A tensor of the autodiff backend: the inner value plus its place in the graph (`None` for
/// constants).
pub struct AdTensor<B: Backend> {
    /// The value.
    pub primitive: B::FloatTensor,
    pub(crate) node: Option<Arc<Node<B>>>,
}

impl<B: Backend> Clone for AdTensor<B> {
    fn clone(&self) -> Self {
        AdTensor { primitive: self.primitive.clone(), node: self.node.clone() }
    }
}
impl<B: Backend> fmt::Debug for AdTensor<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdTensor({:?}, node {:?})", B::float_shape(&self.primitive), self.node.as_ref().map(|n| n.id))
    }
}

impl<B: Backend> AdTensor<B> {
    /// A constant: no gradient flows into it.
    pub fn constant(primitive: B::FloatTensor) -> Self {
        AdTensor { primitive, node: None }
    }
    /// A leaf whose gradient is kept.
    pub fn leaf(primitive: B::FloatTensor) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        AdTensor { primitive, node: Some(Arc::new(Node { id, parents: Vec::new(), step: None })) }
    }
    /// Whether gradients flow through this tensor.
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }
    /// The output of an op on `inputs`, with its backward step (recorded only when some input
    /// is tracked).
    pub(crate) fn record(primitive: B::FloatTensor, inputs: &[&AdTensor<B>], step: impl Step<B> + 'static) -> Self {
        if inputs.iter().all(|t| t.node.is_none()) {
            return AdTensor::constant(primitive);
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let parents = inputs.iter().map(|t| t.node.clone()).collect();
        AdTensor { primitive, node: Some(Arc::new(Node { id, parents, step: Some(Box::new(step)) })) }
    }
}

/// Gradients of the leaves reached by a backward pass.
pub struct Gradients<B: Backend> {
    grads: BTreeMap<u64, B::FloatTensor>,
}

impl<B: Backend> Gradients<B> {
    /// The gradient of a leaf, if the loss depends on it.
    pub fn get(&self, t: &AdTensor<B>) -> Option<&B::FloatTensor> {
        t.node.as_ref().and_then(|n| self.grads.get(&n.id))
    }
    /// Number of leaves with a gradient.
    pub fn len(&self) -> usize {
        self.grads.len()
    }
    /// Whether no leaf got a gradient.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

fn accumulate<B: Backend>(map: &mut BTreeMap<u64, B::FloatTensor>, id: u64, g: B::FloatTensor) {
    let g = match map.remove(&id) {
        Some(prev) => B::float_binary(Binary::Add, prev, g),
        None => g,
    };
    map.insert(id, g);
}

pub(crate) fn backward<B: Backend>(loss: &AdTensor<B>) -> Gradients<B> {
    walk(loss, None)
}

/// The gradient of `loss` with respect to the tracked tensor `wrt` alone, as
/// `torch.autograd.grad(loss, wrt)`: only the steps of nodes that depend on `wrt` run (a node
/// depends on it when one of its parents does; ids grow with creation, so one ascending pass
/// decides). For a weight near the output, such as the last decoder convolution, that is a
/// small part of the graph. `None` when `loss` does not depend on `wrt`.
pub(crate) fn gradient_of<B: Backend>(loss: &AdTensor<B>, wrt: &AdTensor<B>) -> Option<B::FloatTensor> {
    let target = wrt.node.as_ref()?.id;
    walk(loss, Some(target)).grads.remove(&target)
}

/// Backpropagation from `loss` to every leaf, or (with `only`) to that one node.
fn walk<B: Backend>(loss: &AdTensor<B>, only: Option<u64>) -> Gradients<B> {
    let mut grads = BTreeMap::new();
    let Some(root) = &loss.node else { return Gradients { grads } };
    // Every node reachable from the loss; ids grow with creation, so descending id order is a
    // topological order (children before parents).
    let mut nodes: BTreeMap<u64, Arc<Node<B>>> = BTreeMap::new();
    let mut stack = alloc::vec![root.clone()];
    while let Some(n) = stack.pop() {
        if nodes.contains_key(&n.id) {
            continue;
        }
        for p in n.parents.iter().flatten() {
            if !nodes.contains_key(&p.id) {
                stack.push(p.clone());
            }
        }
        nodes.insert(n.id, n);
    }
    // With a target: the nodes whose value depends on it (parents first in ascending order).
    let needed: Option<BTreeMap<u64, ()>> = only.map(|target| {
        let mut dep = BTreeMap::new();
        for (id, node) in &nodes {
            if *id == target || node.parents.iter().flatten().any(|p| dep.contains_key(&p.id)) {
                dep.insert(*id, ());
            }
        }
        dep
    });
    let wanted = |id: u64| needed.as_ref().is_none_or(|d| d.contains_key(&id));
    let shape = B::float_shape(&loss.primitive);
    let device = B::float_device(&loss.primitive);
    let mut pending: BTreeMap<u64, B::FloatTensor> = BTreeMap::new();
    if wanted(root.id) {
        pending.insert(root.id, B::float_full(shape, 1.0, &device));
    }
    for (id, node) in nodes.iter().rev() {
        let Some(g) = pending.remove(id) else { continue };
        match &node.step {
            None => accumulate::<B>(&mut grads, *id, g),
            Some(step) => {
                let parent_grads = step.backward(g);
                for (p, pg) in node.parents.iter().zip(parent_grads) {
                    if let (Some(p), Some(pg)) = (p, pg)
                        && wanted(p.id)
                    {
                        accumulate::<B>(&mut pending, p.id, pg);
                    }
                }
            }
        }
    }
    Gradients { grads }
}

/// Sums a broadcast gradient back to `shape` (leading dims dropped, size-1 dims summed).
pub(crate) fn reduce_to_shape<B: Backend>(g: B::FloatTensor, shape: &Shape) -> B::FloatTensor {
    let gs = B::float_shape(&g);
    if &gs == shape {
        return g;
    }
    let extra = gs.rank() - shape.rank();
    let mut g = g;
    for d in 0..gs.rank() {
        let target = if d < extra { 1 } else { shape.dims[d - extra] };
        if target == 1 && gs.dims[d] != 1 {
            g = B::float_reduce(Reduce::Sum, g, d);
        }
    }
    B::float_reshape(g, shape.clone())
}
