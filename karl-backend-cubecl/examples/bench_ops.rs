//! The op benchmark of karl-core (`cargo bench -p karl-core --bench ops`: the matrix products
//! and convolutions of karl_small) plus the memory-bound ops of a transformer block, run on
//! every backend compiled in beside the CPU reference, printed as one markdown table.
//!
//! ```sh
//! CUBECL_WGPU_DEFAULT_DEVICE=Cpu cargo run --release -p karl-backend-cubecl --features wgpu \
//!     --example bench_ops -- [--device cpu|wgpu|cuda|rocm]... [--quick]
//! ```
//! Each figure is the median of the timed runs after one warm-up (kernel compilation on a
//! GPU), and every run ends with a download of the output, so the times include the device
//! synchronisation and the copy back (the same for every backend). `--quick` drops the
//! largest shapes (for lavapipe, where 1024³ takes seconds).
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::rng::Rng;
use karl_core::{Backend, Tensor};
use std::hint::black_box;
use std::time::Instant;

/// Deterministic pseudo-random values in [-1, 1).
fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32).collect()
}

/// One benchmarked op: a name, its work in GFLOP (0 for memory-bound ops, then MB moved), and
/// whether `--quick` skips it.
struct Case {
    name: String,
    gflop: f64,
    mbytes: f64,
    big: bool,
    kind: Kind,
}

enum Kind {
    Matmul { m: usize, k: usize, n: usize },
    Conv { cin: usize, cout: usize, hw: usize, k: usize, stride: usize, padding: usize },
    Softmax { rows: usize, cols: usize },
    LayerNorm { rows: usize, cols: usize },
    Gelu { n: usize },
    Add { n: usize },
    Attention { b: usize, h: usize, l: usize, d: usize },
}

fn cases() -> Vec<Case> {
    let mm = |m: usize, k: usize, n: usize, name: &str, big: bool| Case {
        name: format!("matmul {name}"),
        gflop: 2.0 * (m * k * n) as f64 * 1e-9,
        mbytes: 0.0,
        big,
        kind: Kind::Matmul { m, k, n },
    };
    let conv = |cin: usize, cout: usize, hw: usize, k: usize, stride: usize, padding: usize, name: &str, big| {
        let o = (hw + 2 * padding - k) / stride + 1;
        Case {
            name: format!("conv2d {name}"),
            gflop: 2.0 * (cout * cin * k * k * o * o) as f64 * 1e-9,
            mbytes: 0.0,
            big,
            kind: Kind::Conv { cin, cout, hw, k, stride, padding },
        }
    };
    let mem = |name: &str, elems: usize, passes: f64, kind: Kind| Case {
        name: name.to_string(),
        gflop: 0.0,
        mbytes: elems as f64 * 4.0 * passes * 1e-6,
        big: false,
        kind,
    };
    vec![
        mm(512, 512, 512, "512³", false),
        mm(1024, 1024, 1024, "1024³", true),
        mm(513, 1024, 3072, "513×1024·1024×3072 (qkv)", true),
        mm(513, 1024, 4096, "513×1024·1024×4096 (mlp)", true),
        mm(513, 64, 513, "513×64·64×513 (attn)", false),
        conv(128, 128, 256, 3, 1, 1, "3×3 128→128 @256² p1", true),
        conv(64, 64, 128, 3, 1, 1, "3×3 64→64 @128² p1", false),
        conv(3, 768, 256, 16, 16, 0, "16×16/s16 3→768 @256²", false),
        mem("softmax 16·513 rows × 513", 16 * 513 * 513, 2.0, Kind::Softmax { rows: 16 * 513, cols: 513 }),
        mem("layer_norm 513 × 1024", 513 * 1024, 2.0, Kind::LayerNorm { rows: 513, cols: 1024 }),
        mem("gelu 513 × 4096", 513 * 4096, 2.0, Kind::Gelu { n: 513 * 4096 }),
        mem("add 513 × 4096", 513 * 4096, 3.0, Kind::Add { n: 513 * 4096 }),
        Case {
            name: "attention 1×16 heads×513×64".into(),
            gflop: 4.0 * (16 * 513 * 513 * 64) as f64 * 1e-9,
            mbytes: 0.0,
            big: false,
            kind: Kind::Attention { b: 1, h: 16, l: 513, d: 64 },
        },
    ]
}

/// Median and best seconds of `f` over up to 9 runs (at least 3, about 2 s) after a warm-up.
fn measure(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (times.len() < 9 && start.elapsed().as_secs_f64() < 2.0) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// Seconds (median, best) of every case on backend `B`.
fn run<B: Backend>(device: &B::Device, cases: &[&Case]) -> Vec<(f64, f64)> {
    let t = |v: Vec<f32>, dims: Vec<usize>| {
        match dims.len() {
            1 => Tensor::<B, 4>::from_f32(v, [1, 1, 1, dims[0]], device),
            2 => Tensor::<B, 4>::from_f32(v, [1, 1, dims[0], dims[1]], device),
            _ => Tensor::<B, 4>::from_f32(v, [dims[0], dims[1], dims[2], dims[3]], device),
        }
        .expect("sized")
    };
    cases
        .iter()
        .map(|c| match c.kind {
            Kind::Matmul { m, k, n } => {
                let a = t(fill(m * k, 1), vec![m, k]);
                let b = t(fill(k * n, 2), vec![k, n]);
                measure(|| black_box(a.clone().matmul(b.clone()).to_vec()).truncate(0))
            }
            Kind::Conv { cin, cout, hw, k, stride, padding } => {
                let x = t(fill(cin * hw * hw, 3), vec![1, cin, hw, hw]);
                let w = t(fill(cout * cin * k * k, 4), vec![cout, cin, k, k]);
                let bias = Tensor::<B, 1>::from_f32(fill(cout, 5), [cout], device).expect("sized");
                measure(|| black_box(x.clone().conv2d(&w, Some(&bias), stride, padding).to_vec()).truncate(0))
            }
            Kind::Softmax { rows, cols } => {
                let x = t(fill(rows * cols, 6), vec![rows, cols]);
                measure(|| black_box(x.clone().softmax().to_vec()).truncate(0))
            }
            Kind::LayerNorm { rows, cols } => {
                let x = t(fill(rows * cols, 7), vec![rows, cols]);
                let g = Tensor::<B, 1>::from_f32(fill(cols, 8), [cols], device).expect("sized");
                let b = Tensor::<B, 1>::from_f32(fill(cols, 9), [cols], device).expect("sized");
                measure(|| black_box(x.clone().layer_norm(&g, &b, 1e-5).to_vec()).truncate(0))
            }
            Kind::Gelu { n } => {
                let x = t(fill(n, 10), vec![n]);
                measure(|| black_box(x.clone().gelu().to_vec()).truncate(0))
            }
            Kind::Add { n } => {
                let (a, b) = (t(fill(n, 11), vec![n]), t(fill(n, 12), vec![n]));
                measure(|| black_box(a.clone().add(b.clone()).to_vec()).truncate(0))
            }
            Kind::Attention { b, h, l, d } => {
                let q = t(fill(b * h * l * d, 13), vec![b, h, l, d]);
                let k = t(fill(b * h * l * d, 14), vec![b, h, l, d]);
                let v = t(fill(b * h * l * d, 15), vec![b, h, l, d]);
                measure(|| black_box(q.clone().attention(k.clone(), v.clone(), None).to_vec()).truncate(0))
            }
        })
        .collect()
}

#[cfg_attr(not(any(feature = "cuda", feature = "rocm", feature = "wgpu")), allow(dead_code))]
fn run_cube<R: cubecl::Runtime>(kind: karl_backend_cubecl::DeviceKind, cases: &[&Case]) -> Option<Vec<(f64, f64)>> {
    if let Err(e) = karl_backend_cubecl::probe(kind, true) {
        eprintln!("{e}");
        return None;
    }
    let device = karl_backend_cubecl::CubeDevice::<R>::default();
    Some(run::<karl_backend_cubecl::CubeBackend<R>>(&device, cases))
}

fn main() {
    let mut devices = Vec::new();
    let mut quick = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => devices.push(it.next().expect("--device needs a name")),
            "--quick" => quick = true,
            "--bench" => {}
            other => panic!("unknown argument {other} (expected --device NAME or --quick)"),
        }
    }
    if devices.is_empty() {
        devices.push("cpu".into());
        devices.extend(karl_backend_cubecl::available_devices().iter().map(|k| k.name().to_string()));
    }
    let all = cases();
    let cases: Vec<&Case> = all.iter().filter(|c| !(quick && c.big)).collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("op bench: {} cases, load average {}", cases.len(), load.trim());
    let mut columns: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for d in &devices {
        let start = Instant::now();
        let col = match d.as_str() {
            "cpu" => Some(run::<Cpu<f32>>(&CpuDevice, &cases)),
            #[cfg(feature = "cuda")]
            "cuda" => run_cube::<cubecl::cuda::CudaRuntime>(karl_backend_cubecl::DeviceKind::Cuda, &cases),
            #[cfg(feature = "rocm")]
            "rocm" => run_cube::<cubecl::hip::HipRuntime>(karl_backend_cubecl::DeviceKind::Rocm, &cases),
            #[cfg(feature = "wgpu")]
            "wgpu" => run_cube::<cubecl::wgpu::WgpuRuntime>(karl_backend_cubecl::DeviceKind::Wgpu, &cases),
            other => {
                eprintln!("device {other}: not compiled in (features: cuda, rocm, wgpu) or unknown");
                None
            }
        };
        if let Some(col) = col {
            eprintln!("{d}: {:.1} s", start.elapsed().as_secs_f64());
            columns.push((d.clone(), col));
        }
    }
    let head: Vec<String> = columns.iter().map(|(d, _)| format!("{d} ms (best)")).collect();
    let rate: Vec<String> = columns.iter().map(|(d, _)| format!("{d} GFLOP/s or GB/s")).collect();
    let ratio = if columns.len() > 1 { " | first / others" } else { "" };
    println!("| op | {} | {}{ratio} |", head.join(" | "), rate.join(" | "));
    println!("| --- |{}{}", " ---: |".repeat(2 * columns.len()), if ratio.is_empty() { "" } else { " ---: |" });
    for (i, c) in cases.iter().enumerate() {
        let times: Vec<String> =
            columns.iter().map(|(_, v)| format!("{:.2} ({:.2})", v[i].0 * 1e3, v[i].1 * 1e3)).collect();
        let rates: Vec<String> = columns
            .iter()
            .map(|(_, v)| {
                if c.gflop > 0.0 {
                    format!("{:.1}", c.gflop / v[i].0)
                } else {
                    format!("{:.1}", c.mbytes * 1e-3 / v[i].0)
                }
            })
            .collect();
        let ratios = if columns.len() > 1 {
            let r: Vec<String> =
                columns[1..].iter().map(|(_, v)| format!("{:.2}", columns[0].1[i].0 / v[i].0)).collect();
            format!(" | {}", r.join(", "))
        } else {
            String::new()
        };
        println!("| {} | {} | {}{ratios} |", c.name, times.join(" | "), rates.join(" | "));
    }
    println!("\n(medians of 3–9 runs after one warm-up, each run ending with a download of the output)");
}
