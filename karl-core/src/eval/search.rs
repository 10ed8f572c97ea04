//! The iterative baseline KARL is compared with: find the smallest token budget whose
//! reconstruction meets the target error by trying budgets one after another (as ALIT and
//! One-D-Piece do at test time), each try costing one encoder and one decoder pass.
use crate::error::{Error, Result};

/// The budgets tried: `step, 2·step, …` up to `max`, and `max` itself when it is not a multiple
/// of `step`.
pub fn budget_steps(step: usize, max: usize) -> Result<Vec<usize>> {
    if step == 0 || max == 0 {
        return Err(Error::InvalidArgument(format!("search step {step} and budget {max} must both be positive")));
    }
    let mut v: Vec<usize> = (1..).map(|k| k * step).take_while(|&b| b <= max).collect();
    if v.last() != Some(&max) {
        v.push(max);
    }
    Ok(v)
}

/// The result of a budget search for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOutcome {
    /// The budget found (the largest one when none met ε).
    pub budget: usize,
    /// Whether the budget meets ε.
    pub met: bool,
    /// `(budget, L1)` of every try in order; its length is the number of passes.
    pub trace: Vec<(usize, f64)>,
}

impl SearchOutcome {
    /// Encoder (and decoder) passes spent.
    pub fn passes(&self) -> usize {
        self.trace.len()
    }
}

/// Linear search from the smallest budget: tries `steps` in order and stops at the first whose
/// error `try_budget(b)` is `≤ eps`. This is the honest pass count of the iterative approach: the
/// answer is the smallest budget that meets ε, and the one before it (if any) does not.
pub fn linear_search<E>(
    steps: &[usize],
    eps: f64,
    mut try_budget: impl FnMut(usize) -> core::result::Result<f64, E>,
) -> core::result::Result<SearchOutcome, E> {
    let mut trace = Vec::with_capacity(steps.len());
    for &b in steps {
        let l1 = try_budget(b)?;
        trace.push((b, l1));
        if l1 <= eps {
            return Ok(SearchOutcome { budget: b, met: true, trace });
        }
    }
    Ok(SearchOutcome { budget: steps.last().copied().unwrap_or(0), met: false, trace })
}

/// Checks the definition of a search result: the recorded budget is the last one tried, it meets
/// ε (or nothing met ε and it is the largest step), and every smaller step tried did not meet ε.
pub fn check_outcome(
    steps: &[usize],
    eps: f64,
    budget: usize,
    met: bool,
    trace: &[(usize, f64)],
) -> core::result::Result<(), String> {
    let Some(&(last_b, last_l1)) = trace.last() else { return Err("empty trace".into()) };
    if last_b != budget {
        return Err(format!("recorded budget {budget} is not the last one tried ({last_b})"));
    }
    if trace.iter().map(|t| t.0).ne(steps.iter().copied().take(trace.len())) {
        return Err(format!(
            "tried budgets {:?} are not the first steps of {steps:?}",
            trace.iter().map(|t| t.0).collect::<Vec<_>>()
        ));
    }
    if met != (last_l1 <= eps) {
        return Err(format!("met = {met} but the L1 at {budget} is {last_l1} (ε = {eps})"));
    }
    if !met && budget != *steps.last().unwrap_or(&0) {
        return Err(format!("ε not met but the search stopped at {budget}"));
    }
    if let Some(&(b, l1)) = trace[..trace.len() - 1].iter().find(|t| t.1 <= eps) {
        return Err(format!("smaller budget {b} already meets ε (L1 {l1})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_steps_end_at_the_maximum_and_refuse_a_zero_step() {
        assert_eq!(budget_steps(16, 64).unwrap(), vec![16, 32, 48, 64]);
        assert_eq!(budget_steps(16, 40).unwrap(), vec![16, 32, 40]);
        assert_eq!(budget_steps(100, 64).unwrap(), vec![64]);
        assert!(budget_steps(0, 64).is_err());
    }

    #[test]
    fn linear_finds_smallest() {
        let steps = budget_steps(16, 64).unwrap();
        // Error decreasing with budget: 0.2, 0.1, 0.05, 0.01.
        let err = |b: usize| -> core::result::Result<f64, ()> {
            Ok(match b {
                16 => 0.2,
                32 => 0.1,
                48 => 0.05,
                _ => 0.01,
            })
        };
        let o = linear_search(&steps, 0.06, err).unwrap();
        assert_eq!((o.budget, o.met, o.passes()), (48, true, 3));
        check_outcome(&steps, 0.06, o.budget, o.met, &o.trace).unwrap();
        let o = linear_search(&steps, 0.5, err).unwrap();
        assert_eq!((o.budget, o.met, o.passes()), (16, true, 1));
        let o = linear_search(&steps, 0.001, err).unwrap();
        assert_eq!((o.budget, o.met, o.passes()), (64, false, 4));
        check_outcome(&steps, 0.001, o.budget, o.met, &o.trace).unwrap();
        assert!(check_outcome(&steps, 0.15, 32, true, &[(16, 0.1), (32, 0.1)]).is_err());
        assert!(check_outcome(&steps, 0.05, 32, false, &[(16, 0.1), (32, 0.1)]).is_err());
    }
}
