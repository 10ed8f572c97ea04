//! Encode / decode speed of the `karl_small` preset (random weights) at 256×256, batch 1 and
//! 32, on the cubecl backends compiled in (and the CPU reference with `--device cpu`), in each
//! precision asked for (default: f32 and every half type the device has; the CPU is f32).
//!
//! ```sh
//! cargo run --release -p karl-backend-cubecl --features cuda --example bench_model -- \
//!     [--device cuda|rocm|wgpu|cpu]... [--precision f32,bf16] [--batch 1,32] [--iters 5] \
//!     [--preset karl_small]
//! ```
//! Each pass ends with a download (encode: the token ids; decode: the image), so the times
//! include the device synchronisation. The first pass of each shape is a warm-up (kernel
//! compilation) and is reported separately.
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind, FloatElem};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::tokenizer::EncodeOptions;
use karl_core::model::{Karl, KarlConfig, Tokenizer};
use karl_core::{Backend, Precision, Tensor, TensorData};
use std::time::Instant;

struct Args {
    devices: Vec<String>,
    /// Empty: f32 and every half type the device supports.
    precisions: Vec<Precision>,
    batches: Vec<usize>,
    iters: usize,
    preset: String,
}

fn parse() -> Args {
    let mut a = Args {
        devices: Vec::new(),
        precisions: Vec::new(),
        batches: vec![1, 32],
        iters: 5,
        preset: "karl_small".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.devices.push(val()),
            "--precision" => {
                a.precisions = val().split(',').map(|s| s.trim().parse().unwrap_or_else(|e| panic!("{e}"))).collect()
            }
            "--batch" => a.batches = val().split(',').map(|s| s.trim().parse().expect("batch sizes")).collect(),
            "--iters" => a.iters = val().parse().expect("iteration count"),
            "--preset" => a.preset = val(),
            "-h" | "--help" => {
                println!(
                    "bench_model [--device cuda|rocm|wgpu|cpu]... [--precision f32,f16,bf16] [--batch 1,32] [--iters 5] \
                     [--preset karl_small]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if a.devices.is_empty() {
        a.devices = karl_backend_cubecl::available_devices().iter().map(|k| k.name().to_string()).collect();
    }
    a
}

struct Row {
    backend: String,
    pass: &'static str,
    batch: usize,
    first_ms: f64,
    ms: f64,
}

fn bench<B: Backend>(label: &str, device: &B::Device, args: &Args, rows: &mut Vec<Row>) {
    let cfg = KarlConfig::preset(&args.preset).expect("preset");
    let size = cfg.image_size;
    let t0 = Instant::now();
    let tok = Tokenizer::new(Karl::<B>::new(cfg, device, 0).expect("model"));
    eprintln!("{label}: {} initialised in {:.2} s", args.preset, t0.elapsed().as_secs_f64());
    for &batch in &args.batches {
        let n = batch * 3 * size * size;
        let vals: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let data = TensorData::new_f32(vals, [batch, 3, size, size]).expect("sized");
        let x = Tensor::<B, 4>::from_data(&data, device).expect("upload");
        // The default budget (256), or the preset's maximum if smaller.
        let d = EncodeOptions::default();
        let opts = EncodeOptions { budget: d.budget.min(tok.model.config.max_latent_tokens), ..d };
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            let first = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            for _ in 0..args.iters {
                f();
            }
            (first, t.elapsed().as_secs_f64() * 1e3 / args.iters.max(1) as f64)
        };
        let mut tokens = Vec::new();
        let (first, ms) = time(&mut || tokens = tok.encode(&x, opts).expect("encode"));
        rows.push(Row { backend: label.into(), pass: "encode", batch, first_ms: first, ms });
        eprintln!("{label}: encode batch {batch}: {ms:.1} ms");
        let (first, ms) = time(&mut || {
            let img = tok.decode(&tokens).expect("decode");
            std::hint::black_box(img.to_vec());
        });
        rows.push(Row { backend: label.into(), pass: "decode", batch, first_ms: first, ms });
        eprintln!("{label}: decode batch {batch}: {ms:.1} ms");
    }
}

#[cfg_attr(not(any(feature = "cuda", feature = "rocm", feature = "wgpu")), allow(dead_code))]
fn run_cube<R: cubecl::Runtime>(kind: DeviceKind, args: &Args, rows: &mut Vec<Row>) {
    if let Err(e) = karl_backend_cubecl::is_available(kind) {
        eprintln!("{e}");
        return;
    }
    let device = CubeDevice::<R>::default();
    let client = device.client();
    let has = |p: Precision| match p {
        Precision::F32 => true,
        Precision::F16 => karl_backend_cubecl::element::supports::<R, half::f16>(&client),
        Precision::Bf16 => karl_backend_cubecl::element::supports::<R, half::bf16>(&client),
    };
    let wanted = if args.precisions.is_empty() {
        Precision::ALL.into_iter().filter(|&p| has(p)).collect()
    } else {
        args.precisions.clone()
    };
    for p in wanted {
        if !has(p) {
            eprintln!("{kind}: this device has no {p}; skipped");
            continue;
        }
        match p {
            Precision::F32 => bench_in::<R, f32>(kind, &device, args, rows),
            Precision::F16 => bench_in::<R, half::f16>(kind, &device, args, rows),
            Precision::Bf16 => bench_in::<R, half::bf16>(kind, &device, args, rows),
        }
    }
}

#[cfg_attr(not(any(feature = "cuda", feature = "rocm", feature = "wgpu")), allow(dead_code))]
fn bench_in<R: cubecl::Runtime, F: FloatElem>(
    kind: DeviceKind,
    device: &CubeDevice<R>,
    args: &Args,
    rows: &mut Vec<Row>,
) {
    bench::<CubeBackend<R, F>>(&format!("{kind} {}", F::NAME), device, args, rows);
}

fn main() {
    let args = parse();
    let mut rows = Vec::new();
    for d in &args.devices {
        match d.as_str() {
            "cpu" => bench::<Cpu<f32>>("cpu f32", &CpuDevice, &args, &mut rows),
            #[cfg(feature = "cuda")]
            "cuda" => run_cube::<cubecl::cuda::CudaRuntime>(DeviceKind::Cuda, &args, &mut rows),
            #[cfg(feature = "rocm")]
            "rocm" => run_cube::<cubecl::hip::HipRuntime>(DeviceKind::Rocm, &args, &mut rows),
            #[cfg(feature = "wgpu")]
            "wgpu" => run_cube::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu, &args, &mut rows),
            other => eprintln!("device {other}: not compiled in (features: cuda, rocm, wgpu) or unknown"),
        }
    }
    let size = KarlConfig::preset(&args.preset).map_or(0, |c| c.image_size);
    println!(
        "\n{} at {size}×{size}, {} timed passes after one warm-up (f16/bf16: 16-bit storage, f32 accumulation)",
        args.preset, args.iters
    );
    println!("| backend | pass | batch | first pass (ms) | ms / pass | images / s |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            r.backend,
            r.pass,
            r.batch,
            r.first_ms,
            r.ms,
            r.batch as f64 * 1e3 / r.ms
        );
    }
}
