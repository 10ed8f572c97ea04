//! `karl eval` and `karl complexity` end to end with the golden mini model (random weights: these
//! tests check the mechanics — outputs, resume, the search definition, skipped files — not
//! quality). Each image pass takes about a second, so the settings are few and small.
use serde_json::Value;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{args, golden_model};

const EPS: f64 = 0.2;

fn karl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_karl"))
}

/// A temporary directory with a `data` folder of three images (flat; stripes larger than 256
/// so the centre crop matters; noise), one image smaller than the crop and one corrupt file;
/// and that folder.
fn make_data() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    image::RgbImage::from_pixel(256, 256, image::Rgb([120, 130, 140])).save(dir.join("flat.png")).unwrap();
    image::RgbImage::from_fn(288, 272, |x, _| {
        if (x / 8) % 2 == 0 { image::Rgb([0, 0, 0]) } else { image::Rgb([250, 240, 230]) }
    })
    .save(dir.join("stripes.png"))
    .unwrap();
    let mut s = 12345u32;
    image::RgbImage::from_fn(256, 256, |_, _| {
        let mut n = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        };
        image::Rgb([n(), n(), n()])
    })
    .save(dir.join("noise.png"))
    .unwrap();
    image::RgbImage::from_pixel(64, 48, image::Rgb([10, 200, 10])).save(dir.join("small.png")).unwrap();
    let png = std::fs::read(dir.join("noise.png")).unwrap();
    std::fs::write(dir.join("corrupt.png"), &png[..200]).unwrap();
    (tmp, dir)
}

fn eval_args(data: &Path, out: &Path) -> Vec<OsString> {
    args!(
        "eval",
        "--model",
        golden_model("mini"),
        "--data",
        data,
        "--quality",
        "0.2",
        "--tokens",
        "16",
        "--budget",
        "32",
        "--search",
        "exact",
        "--search-step",
        "16",
        "--out",
        out
    )
}

fn run_ok(args: &[OsString]) -> (String, String) {
    let o = karl().args(args).output().unwrap();
    let (so, se) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "karl {args:?} failed\nstdout:\n{so}\nstderr:\n{se}");
    (so, se)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn complete_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.matches('\n').count()).unwrap_or(0)
}

/// report.json without the fields that differ between runs (wall times).
fn report_without_timing(dir: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("timing");
    v
}

#[test]
fn eval_writes_reports_resumes_and_searches() {
    let (tmp, data) = make_data();

    // 1. One uninterrupted run.
    let full = tmp.path().join("full");
    let t0 = Instant::now();
    let (stdout, stderr) = run_ok(&eval_args(&data, &full));
    let full_time = t0.elapsed();
    assert!(stdout.contains("Halting calibration"), "{stdout}");
    assert!(stderr.contains("skipping corrupt.png"), "{stderr}");
    for f in ["results.jsonl", "report.json", "report.md", "kc_histogram.png", "tokens_vs_eps.png", "l1_vs_tokens.png"]
    {
        assert!(full.join(f).is_file(), "{f} missing");
    }
    for f in ["kc_histogram.png", "tokens_vs_eps.png", "l1_vs_tokens.png"] {
        let img = image::open(full.join(f)).unwrap();
        assert!(img.width() >= 320 && img.height() >= 200, "{f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&full)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let md = std::fs::read_to_string(full.join("report.md")).unwrap();
    for needle in [
        "Table 1 layout",
        "Table 2 layout",
        "Table 3 layout",
        "exact budget search",
        "corrupt.png",
        "small.png",
        "kc_histogram.png",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }

    // Per-image lines: 3 readable images × 3 settings, plus 2 skipped files.
    let res = lines(&full.join("results.jsonl"));
    let ok: Vec<&Value> = res.iter().filter(|v| v["status"] == "ok").collect();
    let skipped: HashSet<&str> =
        res.iter().filter(|v| v["status"] == "skipped").map(|v| v["image"].as_str().unwrap()).collect();
    assert_eq!(ok.len(), 9);
    assert_eq!(skipped, HashSet::from(["corrupt.png", "small.png"]));
    let pairs: HashSet<(String, String)> =
        ok.iter().map(|v| (v["image"].to_string(), v["setting"].to_string())).collect();
    assert_eq!(pairs.len(), 9, "duplicate (image, setting) lines");
    for v in &ok {
        for k in ["l1", "mse", "ssim", "time_s"] {
            assert!(v[k].as_f64().unwrap().is_finite(), "{k} in {v}");
        }
        assert!(v["psnr"].is_null() || v["psnr"].as_f64().is_some());
        let tokens = v["tokens"].as_u64().unwrap();
        match v["mode"].as_str().unwrap() {
            "adaptive" => assert!(tokens <= 32 && v["enc_passes"] == 1 && v["dec_passes"] == 1, "{v}"),
            "fixed" => assert!(tokens == 16 && v["enc_passes"] == 1, "{v}"),
            _ => {}
        }
    }

    // The search definition: the searched budget meets ε and the next smaller step does not
    // (unless it is the smallest step); when nothing meets ε the largest budget is recorded.
    let steps = [16u64, 32];
    for v in ok.iter().filter(|v| v["mode"] == "search") {
        let s = &v["search"];
        let trace: Vec<(u64, f64)> =
            s["trace"].as_array().unwrap().iter().map(|t| (t[0].as_u64().unwrap(), t[1].as_f64().unwrap())).collect();
        let budget = v["tokens"].as_u64().unwrap();
        let met = s["met"].as_bool().unwrap();
        assert_eq!(v["enc_passes"].as_u64().unwrap(), trace.len() as u64, "passes = budgets tried: {v}");
        assert_eq!(trace.last().unwrap().0, budget, "{v}");
        assert_eq!(trace.iter().map(|t| t.0).collect::<Vec<_>>(), steps[..trace.len()].to_vec(), "{v}");
        assert_eq!((v["l1"].as_f64().unwrap() - trace.last().unwrap().1).abs(), 0.0, "{v}");
        if met {
            assert!(trace.last().unwrap().1 <= EPS, "{v}");
            match steps.iter().position(|&b| b == budget).unwrap() {
                0 => {}
                k => {
                    let prev = trace.iter().find(|t| t.0 == steps[k - 1]).expect("the next smaller step was tried");
                    assert!(prev.1 > EPS, "smaller budget {} already meets ε: {v}", prev.0);
                }
            }
        } else {
            assert_eq!(budget, 32, "{v}");
            assert!(trace.iter().all(|t| t.1 > EPS), "{v}");
        }
        // Every try is a fixed-length pass of the same model: at 16 tokens it is exactly the
        // fixed N=16 setting.
        let fixed16 = ok.iter().find(|f| f["image"] == v["image"] && f["setting"] == "fixed N=16").unwrap();
        assert_eq!(trace[0].1, fixed16["l1"].as_f64().unwrap(), "{v}");
    }

    let report = report_without_timing(&full);
    assert_eq!(report["images"]["found"], 5);
    assert_eq!(report["images"]["evaluated"], 3);
    assert_eq!(report["images"]["skipped"], 2);
    assert_eq!(report["images"]["missing_pairs"], 0);
    assert_eq!(report["adaptive"].as_array().unwrap().len(), 1);
    assert_eq!(report["fixed"].as_array().unwrap().len(), 1);
    assert_eq!(report["calibration"][0]["over"].as_array().unwrap().len(), 6);
    assert_eq!(report["search"][0]["images"], 3);
    assert_eq!(report["protocol"]["input"], "center-crop");

    // Without --resume an existing run is not overwritten.
    let o = karl().args(eval_args(&data, &full)).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));

    // 2. A run killed half way (after its first result line), with a torn last line as a kill
    //    in the middle of a write leaves it, then resumed.
    let part = tmp.path().join("part");
    let mut child = karl().args(eval_args(&data, &part)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let results = part.join("results.jsonl");
    let deadline = Instant::now() + full_time * 3 + Duration::from_secs(60);
    // The first line is the corrupt file's skip record; wait for the first model result too.
    while complete_lines(&results) < 2 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().ok();
    child.wait().unwrap();
    let done_before = complete_lines(&results);
    assert!(done_before >= 2, "the killed run wrote {done_before} lines");
    assert!(done_before < 11, "the run finished before it could be killed");
    let mut f = std::fs::OpenOptions::new().append(true).open(&results).unwrap();
    std::io::Write::write_all(&mut f, br#"{"status":"ok","image":"noise.png","setting":"adap"#).unwrap();
    drop(f);
    let mut args = eval_args(&data, &part);
    args.push("--resume".into());
    let (_, stderr) = run_ok(&args);
    assert!(stderr.contains("resuming"), "{stderr}");
    let resumed = lines(&results);
    assert_eq!(resumed.len(), res.len(), "resumed results.jsonl has {} lines", resumed.len());
    let pairs: HashSet<(String, String)> =
        resumed.iter().map(|v| (v["image"].to_string(), v["setting"].to_string())).collect();
    assert_eq!(pairs.len(), res.len(), "duplicate lines after resume");
    assert_eq!(report_without_timing(&part), report, "resumed report differs from the uninterrupted one");
}

#[test]
fn complexity_ranks_images_and_draws_a_sheet() {
    let (tmp, data) = make_data();
    let csv = tmp.path().join("kc.csv");
    let sheet = tmp.path().join("sheet.png");
    let args = args!(
        "complexity",
        data,
        "--model",
        golden_model("mini"),
        "--quality",
        "0.2",
        "--budget",
        "32",
        "--csv",
        csv,
        "--sheet",
        sheet,
        "--json",
        "--thumb",
        "48"
    );
    let (stdout, stderr) = run_ok(&args);
    assert!(stderr.contains("corrupt.png"), "{stderr}");
    // The custom-image path resizes, so the small image is ranked too; the corrupt one is not.
    let rows: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    let kcs: Vec<u64> = rows.iter().map(|r| r["kc"].as_u64().unwrap()).collect();
    assert!(kcs.windows(2).all(|w| w[0] <= w[1]), "not sorted by KC: {kcs:?}");
    assert!(kcs.iter().all(|&k| k <= 32));
    assert!(rows.iter().all(|r| r["l1"].as_f64().unwrap() > 0.0));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut csv_lines = text.lines();
    assert_eq!(csv_lines.next(), Some("image,kc,l1"));
    let csv_kc: Vec<u64> = csv_lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(csv_kc, kcs);
    let img = image::open(&sheet).unwrap();
    // 4 thumbnails in one row: 4·(48 + 6) + 6 wide, 48 + caption (20) + 6 + 6 high.
    assert_eq!((img.width(), img.height()), (4 * 54 + 6, 48 + 20 + 12));
}

#[test]
fn complexity_defaults_to_the_models_largest_budget() {
    // the built-in model has 64 latent tokens: no --budget must mean 64, not 256
    let (_tmp, data) = make_data();
    let (stdout, _) = run_ok(&[OsString::from("complexity"), OsString::from(&data), OsString::from("--json")]);
    let rows: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows.iter().all(|r| (1..=64).contains(&r["kc"].as_u64().unwrap())), "{stdout}");
}
