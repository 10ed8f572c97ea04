//! Throughput of the CPU backend's matrix product and convolution, printed as markdown tables.
//! Not a timed test: run it by hand with
//! `cargo bench -p karl-core --features bench-gemm --bench ops` (sections `sgemm`, `conv`,
//! `ssim`: `-- ssim` runs one).
//!
//! * sgemm: ours (`Tensor::matmul` on `Cpu<f32>`, i.e. faer's gemm) beside the `gemm` crate
//!   0.19 called directly on the same row-major buffers, at 512³, 1024³ and the karl_small
//!   shapes, with 1 and 2 threads.
//! * conv2d (batch 1): GFLOP/s (2·Cout·Cin·k²·OH·OW) and its share of our matmul's throughput
//!   on the equivalent im2col product `[Cout × Cin·k²] · [Cin·k² × OH·OW]` (same FLOPs).
//!
//! Thread count: everything runs twice, inside `rayon::ThreadPoolBuilder::new().num_threads(n)`
//! `.build()?.install(..)` for n = 1 and 2. faer's `Par::rayon(0)` reads
//! `rayon::current_num_threads()` and spawns through rayon, so it follows the installed pool;
//! the `busy threads` columns check that from the per-thread CPU time in `/proc/self/task`
//! (a thread outside the installed pool doing work would show as `+1!`).
//!
//! Each figure is the median of 5–31 timed runs after two warm-up runs, with the fastest run
//! beside it in parentheses (a shared machine slows the median, rarely the best).
use karl_core::Tensor;
use karl_core::cpu::{Cpu, CpuDevice};
use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

type B = Cpu<f32>;

/// Wall time of the timed runs aimed at per measurement (seconds).
const TARGET_S: f64 = 0.4;
/// Name prefix of the installed pools' threads (`/proc` truncates names to 15 bytes).
const POOL_PREFIX: &str = "benchpool";

/// Deterministic pseudo-random values in [-1, 1).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    karl_core::rng::Rng::new(seed).uniform_f32s(n, -1.0, 1.0)
}

/// CPU time (user + system, clock ticks) of each thread of this process, by thread id, with
/// the thread's name, from `/proc/self/task/*/stat`.
fn thread_ticks() -> Vec<(u64, String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u64 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let (open, close) = (stat.find('(')?, stat.rfind(')')?);
        // Fields after the name: state is field 3, utime 14, stime 15.
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some((tid, stat[open + 1..close].to_string(), ticks))
    })
    .collect()
}

/// Median seconds per call, and which threads did the work.
#[derive(Clone, Copy)]
struct Timing {
    secs: f64,
    /// Fastest timed run (seconds): less sensitive to other processes on a shared machine.
    best: f64,
    /// Threads of the installed pool that used ≥ 25% of the busiest thread's CPU time.
    busy_pool: usize,
    /// Such threads outside the installed pool (the global pool, the main thread, ...).
    busy_other: usize,
}

fn measure(mut f: impl FnMut()) -> Timing {
    let t = Instant::now();
    f();
    f();
    let warm = t.elapsed().as_secs_f64() / 2.0;
    let runs = ((TARGET_S / warm.max(1e-9)) as usize).clamp(5, 31);
    let mut times = Vec::with_capacity(runs);
    let before = thread_ticks();
    for _ in 0..runs {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    let deltas: Vec<(bool, u64)> = thread_ticks()
        .into_iter()
        .map(|(tid, name, ticks)| {
            let old = before.iter().find(|b| b.0 == tid).map_or(0, |b| b.2);
            (name.starts_with(POOL_PREFIX), ticks - old)
        })
        .collect();
    let top = deltas.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let busy = |pool: bool| deltas.iter().filter(|d| d.0 == pool && 4 * d.1 >= top).count();
    times.sort_by(f64::total_cmp);
    Timing { secs: times[runs / 2], best: times[0], busy_pool: busy(true), busy_other: busy(false) }
}

/// `c (m×n) = a (m×k) · b (k×n)`, all row-major, through the `gemm` crate.
fn gemm_crate(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], par: gemm::Parallelism) {
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    // SAFETY: `a`, `b` and `c` are live slices of exactly m·k, k·n and m·n f32 (checked above),
    // addressed row-major with column stride 1 and row strides k, n and n, so every element the
    // strides reach is in bounds; `c` is uniquely borrowed, so it overlaps neither input; and
    // `read_dst` is false, so c's previous contents are never read (alpha is then ignored).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

struct MatShape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
}

impl MatShape {
    fn gflop(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64 * 1e-9
    }
}

struct ConvCase {
    name: &'static str,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
    stride: usize,
    padding: usize,
}

impl ConvCase {
    fn out_hw(&self) -> usize {
        (self.hw + 2 * self.padding - self.k) / self.stride + 1
    }
    fn gflop(&self) -> f64 {
        let o = self.out_hw();
        2.0 * (self.cout * self.cin * self.k * self.k * o * o) as f64 * 1e-9
    }
    /// The im2col product: `[Cout × Cin·k²] · [Cin·k² × OH·OW]`.
    fn equivalent(&self) -> (usize, usize, usize) {
        (self.cout, self.cin * self.k * self.k, self.out_hw() * self.out_hw())
    }
}

/// Results for one thread count.
struct Run {
    /// Per matrix shape: (ours, gemm crate).
    mat: Vec<(Timing, Timing)>,
    /// Per conv case: (conv, equivalent matmul).
    conv: Vec<(Timing, Timing)>,
}

fn matmul_inputs(m: usize, k: usize, n: usize) -> Result<(Tensor<B, 2>, Tensor<B, 2>), Box<dyn Error>> {
    let a = Tensor::<B, 2>::from_f32(fill(m * k, 1), [m, k], &CpuDevice)?;
    let b = Tensor::<B, 2>::from_f32(fill(k * n, 2), [k, n], &CpuDevice)?;
    Ok((a, b))
}

fn run(threads: usize, mats: &[MatShape], convs: &[ConvCase]) -> Result<Run, Box<dyn Error>> {
    let par = if threads == 1 { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    let mut mat = Vec::new();
    for s in mats {
        let (a, b) = matmul_inputs(s.m, s.k, s.n)?;
        let (av, bv) = (a.to_vec(), b.to_vec());
        let mut c = vec![0.0f32; s.m * s.n];
        let ours = measure(|| {
            black_box(a.clone().matmul(b.clone()));
        });
        let theirs = measure(|| {
            gemm_crate(s.m, s.k, s.n, &av, &bv, &mut c, par);
            black_box(&mut c);
        });
        // Both must compute the same product (guards the strides passed to the gemm crate).
        let got = a.clone().matmul(b.clone()).to_vec();
        let err = got.iter().zip(&c).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(err <= 1e-3 * (s.k as f32).sqrt(), "{}: ours and gemm differ by {err}", s.name);
        mat.push((ours, theirs));
    }
    let mut conv = Vec::new();
    for cc in convs {
        let x = Tensor::<B, 4>::from_f32(fill(cc.cin * cc.hw * cc.hw, 3), [1, cc.cin, cc.hw, cc.hw], &CpuDevice)?;
        let w = Tensor::<B, 4>::from_f32(
            fill(cc.cout * cc.cin * cc.k * cc.k, 4),
            [cc.cout, cc.cin, cc.k, cc.k],
            &CpuDevice,
        )?;
        let bias = Tensor::<B, 1>::from_f32(fill(cc.cout, 5), [cc.cout], &CpuDevice)?;
        let t_conv = measure(|| {
            black_box(x.clone().conv2d(&w, Some(&bias), cc.stride, cc.padding));
        });
        drop(x);
        let (m, k, n) = cc.equivalent();
        let (a, b) = matmul_inputs(m, k, n)?;
        let t_mat = measure(|| {
            black_box(a.clone().matmul(b.clone()));
        });
        conv.push((t_conv, t_mat));
    }
    Ok(Run { mat, conv })
}

fn gflops(gflop: f64, t: Timing) -> f64 {
    gflop / t.secs
}

/// Busy threads, e.g. `2` (all in the installed pool) or `1+1!` (one outside it).
fn busy(t: Timing) -> String {
    if t.busy_other == 0 { t.busy_pool.to_string() } else { format!("{}+{}!", t.busy_pool, t.busy_other) }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mats = [
        MatShape { name: "512³", m: 512, k: 512, n: 512 },
        MatShape { name: "1024³", m: 1024, k: 1024, n: 1024 },
        MatShape { name: "513×1024·1024×3072 (qkv)", m: 513, k: 1024, n: 3072 },
        MatShape { name: "513×1024·1024×4096 (mlp)", m: 513, k: 1024, n: 4096 },
        MatShape { name: "513×64·64×513 (attn)", m: 513, k: 64, n: 513 },
    ];
    let convs = [
        ConvCase { name: "3×3 128→128 @256² p1", cin: 128, cout: 128, hw: 256, k: 3, stride: 1, padding: 1 },
        ConvCase { name: "3×3 64→64 @128² p1", cin: 64, cout: 64, hw: 128, k: 3, stride: 1, padding: 1 },
        ConvCase { name: "11×11/s4 3→64 @224² p2 (info)", cin: 3, cout: 64, hw: 224, k: 11, stride: 4, padding: 2 },
        ConvCase {
            name: "16×16/s16 3→768 @256² (info)", cin: 3, cout: 768, hw: 256, k: 16, stride: 16, padding: 0
        },
    ];
    // `cargo bench -p karl-core --features bench-gemm --bench ops -- conv` (or `sgemm`, `ssim`)
    // runs one section only.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |section: &str| args.is_empty() || args.iter().any(|a| a == section);
    let mats: &[MatShape] = if want("sgemm") { &mats } else { &[] };
    let convs: &[ConvCase] = if want("conv") { &convs } else { &[] };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("ops bench: {} logical CPUs, load average {}", num_cpus(), load.trim());
    if want("ssim") {
        print_ssim()?;
    }
    let start = Instant::now();
    let threads = [1usize, 2];
    let mut runs = Vec::new();
    for &n in &threads {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("{POOL_PREFIX}{i}")).build()?;
        let r = pool.install(|| {
            assert_eq!(rayon::current_num_threads(), n);
            run(n, mats, convs).map_err(|e| e.to_string())
        })?;
        runs.push(r);
    }

    if !mats.is_empty() {
        print_sgemm(mats, &runs);
    }
    if !convs.is_empty() {
        print_conv(convs, &runs);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n(total {:.1} s; medians of 5–31 runs after 2 warm-ups; load average now {})",
        start.elapsed().as_secs_f64(),
        load.trim()
    );
    Ok(())
}

/// `median (best)` GFLOP/s.
fn cell(gflop: f64, t: Timing) -> String {
    format!("{:.1} ({:.1})", gflop / t.secs, gflop / t.best)
}

/// The header of a markdown table comparing `a` with `b` at 1 and 2 threads: `first`, GFLOP,
/// then for each thread count `a`, `b` and `a/b`, then the `extra` columns and `a`'s busy
/// threads; the first column left-aligned, the numbers right-aligned.
fn comparison_header(first: &str, a: &str, b: &str, extra: &[&str]) {
    let mut cols = vec![first.to_string(), "GFLOP".to_string()];
    for t in ["1t", "2t"] {
        cols.extend([format!("{a} {t}"), format!("{b} {t}"), format!("{a}/{b} {t}")]);
    }
    cols.extend(extra.iter().map(|e| e.to_string()));
    cols.push(format!("busy threads {a} 1t, 2t"));
    println!("| {} |", cols.join(" | "));
    println!("|---|{}", "---:|".repeat(cols.len() - 1));
}

fn print_sgemm(mats: &[MatShape], runs: &[Run]) {
    println!("\n### sgemm, GFLOP/s as median (best)");
    println!("ours = `Tensor::matmul` on `Cpu<f32>` (faer); gemm = `gemm` 0.19 on the same buffers;");
    println!("1t: 1-thread pool, gemm `Parallelism::None`; 2t: 2-thread pool, gemm `Rayon(2)`.\n");
    comparison_header("shape", "ours", "gemm", &["ours/best gemm"]);
    for (i, s) in mats.iter().enumerate() {
        let g = s.gflop();
        let (o1, g1) = runs[0].mat[i];
        let (o2, g2) = runs[1].mat[i];
        let (o1f, g1f, o2f, g2f) = (gflops(g, o1), gflops(g, g1), gflops(g, o2), gflops(g, g2));
        println!(
            "| {} | {g:.3} | {} | {} | {:.0}% | {} | {} | {:.0}% | {:.0}% | {}, {} |",
            s.name,
            cell(g, o1),
            cell(g, g1),
            100.0 * o1f / g1f,
            cell(g, o2),
            cell(g, g2),
            100.0 * o2f / g2f,
            100.0 * o1f.max(o2f) / g1f.max(g2f),
            busy(o1),
            busy(o2)
        );
    }
}

fn print_conv(convs: &[ConvCase], runs: &[Run]) {
    println!("\n### conv2d, batch 1, GFLOP/s (2·Cout·Cin·k²·OH·OW) as median (best)");
    println!("equiv = our matmul on the im2col product [Cout × Cin·k²]·[Cin·k² × OH·OW] (same FLOPs).\n");
    comparison_header("conv", "conv", "equiv", &[]);
    for (i, cc) in convs.iter().enumerate() {
        let g = cc.gflop();
        let (c1, e1) = runs[0].conv[i];
        let (c2, e2) = runs[1].conv[i];
        println!(
            "| {} | {g:.3} | {} | {} | {:.0}% | {} | {} | {:.0}% | {}, {} |",
            cc.name,
            cell(g, c1),
            cell(g, e1),
            100.0 * e1.secs / c1.secs,
            cell(g, c2),
            cell(g, e2),
            100.0 * e2.secs / c2.secs,
            busy(c1),
            busy(c2)
        );
    }
}

/// SSIM of two 3×256×256 images, f32 and f64 paths, best of 3 (was a test that could not fail).
fn print_ssim() -> Result<(), Box<dyn Error>> {
    use karl_core::metrics::ImageRef;
    use karl_core::metrics::ssim::{ssim, ssim_f64};
    let mut r = karl_core::rng::Rng::new(3);
    let a: Vec<f32> = (0..3 * 256 * 256).map(|_| r.uniform() as f32).collect();
    let b: Vec<f32> = a.iter().map(|v| (v + 0.1 * r.normal() as f32).clamp(0.0, 1.0)).collect();
    let (ia, ib) = (ImageRef::new(&a, 3, 256, 256)?, ImageRef::new(&b, 3, 256, 256)?);
    let (mut best, mut best64) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let t = Instant::now();
        black_box(ssim(ia, ib)?);
        best = best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(ssim_f64(ia, ib)?);
        best64 = best64.min(t.elapsed().as_secs_f64());
    }
    println!("\nSSIM 3×256×256 (best of 3): ssim {:.1} ms, ssim_f64 {:.1} ms", best * 1e3, best64 * 1e3);
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
