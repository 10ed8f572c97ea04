//! Training step time (both phases, forward + backward + AdamW) for the golden mini
//! configuration (VQGAN base, read from `$KARL_SHARED/golden/mini/config.json`) at batch 1 and
//! 8 with the official phase-(a) budget draw, and images/s of the built-in pixel model's
//! configuration; then the step-time overhead of minimum-budget halting labels over the
//! official ones (both prefix losses), the three trainers stepped in turn on the same batches
//! so that the machine's load falls on all alike. Not a timed test:
//! `cargo bench -p karl-core --bench train`. Options after `--`: `--parts a,b,…` from
//! `golden1`, `golden8`, `pixel8`, `pixel16`, `labels` (default: all); `--steps N` timed steps
//! per golden/pixel case (default 5 at batch 1, 3 at batch 8, 5 for the pixel model; one
//! untimed step always comes first); `--times` one `times train <case> <seconds>…` line per
//! case with every timed step (for `scripts/bench-vs-pytorch.sh`); `--budget-a T` a fixed
//! phase-(a) budget for the golden mini instead of the official draw (16, 32, …, 368), so that
//! a few steps give a steady median. Threads: rayon's global pool (`RAYON_NUM_THREADS`).
use karl_core::Tensor;
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{Karl, KarlConfig};
use karl_core::train::halting_labels::{HaltingLabels, PrefixLoss, default_ladder};
use karl_core::train::trainer::{DataSource, SyntheticData, TrainConfig, Trainer};
use std::time::Instant;

type B = Autodiff<Cpu<f32>>;

/// Every timed step's seconds (after one untimed step), sorted.
fn time_steps(config: &KarlConfig, batch: usize, steps: usize, budget_a: Option<usize>) -> Vec<f64> {
    let mut t = TrainConfig::for_model(config, 1000, batch, 1);
    t.checkpoint_every = 0;
    if let Some(b) = budget_a {
        t.budgets_a = vec![b];
    }
    let mut trainer = Trainer::new(Karl::<B>::new(config.clone(), &CpuDevice, 1).unwrap(), t).unwrap();
    let s = config.image_size;
    let mut data = SyntheticData { seed: 2 };
    let mut times = Vec::new();
    for step in 0..steps as u64 + 1 {
        let x = Tensor::<B, 4>::from_f32(data.batch(step, batch, s).unwrap(), [batch, 3, s, s], &CpuDevice).unwrap();
        let t0 = Instant::now();
        trainer.step(&x).unwrap();
        if step > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

/// The value after `--name` (or in `--name=value`) on the command line, if any.
fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let eq = format!("{name}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| if a == name { args.get(i + 1).map(String::as_str) } else { a.strip_prefix(&eq) })
}

/// Prints the median row (and with `--times` every step) of one case.
fn report(name: &str, case: &str, batch: usize, times: &[f64], print_times: bool) {
    let s = times[times.len() / 2];
    if print_times {
        let v: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
        println!("times train {case} {}", v.join(" "));
    }
    println!("| {name} | {batch} | {s:.3} | {:.2} |", batch as f64 / s);
}

/// Median step times of official, min_budget (drawn prefix) and min_budget (ladder prefix
/// loss) trainers, stepped in turn.
fn label_overhead(config: &KarlConfig, batch: usize, steps: usize) -> [f64; 3] {
    let variants = [
        (HaltingLabels::Official, PrefixLoss::Drawn),
        (HaltingLabels::MinBudget, PrefixLoss::Drawn),
        (HaltingLabels::MinBudget, PrefixLoss::Ladder),
    ];
    let mut trainers: Vec<Trainer<B>> = variants
        .iter()
        .map(|&(labels, prefix)| {
            let mut t = TrainConfig::for_model(config, 1000, batch, 1);
            t.checkpoint_every = 0;
            t.halting_labels = labels;
            t.prefix_loss = prefix;
            if labels == HaltingLabels::MinBudget {
                t.budgets_a = default_ladder(t.budget_b);
            }
            Trainer::new(Karl::<B>::new(config.clone(), &CpuDevice, 1).unwrap(), t).unwrap()
        })
        .collect();
    let s = config.image_size;
    let mut data = SyntheticData { seed: 2 };
    let mut times = vec![Vec::new(); variants.len()];
    for step in 0..steps as u64 + 1 {
        let x = Tensor::<B, 4>::from_f32(data.batch(step, batch, s).unwrap(), [batch, 3, s, s], &CpuDevice).unwrap();
        for (tr, ts) in trainers.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            tr.step(&x).unwrap();
            if step > 0 {
                ts.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    medians(times)
}

/// The median of each variant's step times.
fn medians(times: Vec<Vec<f64>>) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (o, mut t) in out.iter_mut().zip(times) {
        t.sort_by(f64::total_cmp);
        *o = t[t.len() / 2];
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all_parts = ["golden1", "golden8", "pixel8", "pixel16", "labels"];
    let parts: Vec<&str> = flag_value(&args, "--parts").map_or(all_parts.to_vec(), |p| p.split(',').collect());
    if let Some(bad) = parts.iter().find(|p| !all_parts.contains(p)) {
        panic!("unknown part {bad:?} in --parts (known: {})", all_parts.join(", "));
    }
    let steps_override =
        flag_value(&args, "--steps").map(|v| v.parse::<usize>().expect("--steps takes a number").max(1));
    let print_times = args.iter().any(|a| a == "--times");
    let budget_a = flag_value(&args, "--budget-a").map(|v| v.parse::<usize>().expect("--budget-a takes a number"));
    let shared = std::env::var_os("KARL_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    println!("| configuration | batch | median s/step | images/s |");
    println!("|---|---:|---:|---:|");
    let golden: Vec<(usize, usize)> =
        [(1, 5), (8, 3)].into_iter().filter(|(b, _)| parts.contains(&format!("golden{b}").as_str())).collect();
    if !golden.is_empty() {
        match std::fs::read_to_string(shared.join("golden/mini/config.json")) {
            Ok(text) => {
                let mini = KarlConfig::from_json(&text).unwrap();
                for (batch, steps) in golden {
                    let t = time_steps(&mini, batch, steps_override.unwrap_or(steps), budget_a);
                    report("golden mini (VQGAN base, 256²)", &format!("golden{batch}"), batch, &t, print_times);
                }
            }
            Err(e) => println!("(golden mini config not found: {e})"),
        }
    }
    let pixel = KarlConfig::from_json(include_str!("../../models/default/train-config.json")).unwrap();
    for batch in [8, 16] {
        if parts.contains(&format!("pixel{batch}").as_str()) {
            let t = time_steps(&pixel, batch, steps_override.unwrap_or(5), None);
            report("built-in pixel model (64²)", &format!("pixel{batch}"), batch, &t, print_times);
        }
    }
    if !parts.contains(&"labels") {
        return;
    }
    println!();
    println!("| configuration | batch | official s/step | min_budget drawn | ratio | min_budget ladder | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let tiny = KarlConfig::preset("karl_pixel_tiny").unwrap();
    for (name, cfg, batch) in [("karl_pixel_tiny (32²)", &tiny, 32), ("built-in pixel model (64²)", &pixel, 16)] {
        let [o, d, l] = label_overhead(cfg, batch, 7);
        println!("| {name} | {batch} | {o:.3} | {d:.3} | {:.2}× | {l:.3} | {:.2}× |", d / o, l / o);
    }
}
