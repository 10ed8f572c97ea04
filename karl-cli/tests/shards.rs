//! Dataset-scale tokenization end to end with the built-in model: WebDataset tar shards made by
//! the test, `--shard I/N` partitions, kill + rerun, corrupt members, `karl info` and
//! `karl reconstruct --key` on token shards.
use karl_core::model::shard::parse_all;
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::karl;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "karl failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// A `w`×`h` PNG whose content depends on `seed`.
fn png(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = |k: u32| ((x * (seed % 5 + 1) + y * k + seed * 37) % 256) as u8;
        image::Rgb([v(1), v(3), v(7)])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// Writes a tar with the given (member name, bytes).
fn tar(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// Every `.karlshard` in `dir`: file name → (keys, raw bytes), all records verified.
fn shards(dir: &Path) -> BTreeMap<String, (Vec<String>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "karlshard") {
            let bytes = std::fs::read(&p).unwrap();
            let (index, _) = parse_all(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            let keys = index.entries.iter().map(|e| e.key.clone()).collect();
            out.insert(p.file_name().unwrap().to_string_lossy().to_string(), (keys, bytes));
        }
    }
    out
}

fn manifest(dir: &Path, i: usize, n: usize) -> serde_json::Value {
    let p = dir.join(format!("manifest-{i:05}-of-{n:05}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// A folder of `n` model-size PNGs in two subfolders.
fn folder(dir: &Path, n: u32) -> PathBuf {
    let root = dir.join("images");
    for i in 0..n {
        let sub = root.join(if i % 2 == 0 { "even" } else { "odd" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("img{i:03}.png")), png(i, 64, 64)).unwrap();
    }
    root
}

#[test]
fn tar_shards_in_with_a_corrupt_member_token_shards_out() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..2u32 {
        let mut members = Vec::new();
        for i in 0..3u32 {
            let key = format!("s{s}/{:04}", i);
            members.push((format!("{key}.png"), png(s * 10 + i, 64, 64)));
            members.push((format!("{key}.cls"), b"3".to_vec()));
        }
        if s == 1 {
            // a photo of another size (tiled), and a truncated PNG
            members.push(("s1/big.jpg.png".to_string(), png(99, 100, 70)));
            let mut bad = png(5, 64, 64);
            bad.truncate(bad.len() / 2);
            members.push(("s1/broken.png".to_string(), bad));
        }
        tar(&d.join(format!("train-{s:02}.tar")), &members);
    }
    let out = d.join("out");
    let pattern = format!("{}/train-{{00..01}}.tar", d.display());
    let o = ok(karl!("tokenize", &pattern, "-o", out, "-q", "0.05"));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("2 shards") && text.contains("7 images") && text.contains("1 failed"), "{text}");
    let got = shards(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["train-00.karlshard", "train-01.karlshard"]);
    assert_eq!(got["train-00.karlshard"].0, ["s0/0000", "s0/0001", "s0/0002"]);
    assert_eq!(got["train-01.karlshard"].0, ["s1/0000", "s1/0001", "s1/0002", "s1/big"]);
    let m = manifest(&out, 0, 1);
    assert_eq!(m["images"], 7);
    assert_eq!(m["complete"], true);
    assert_eq!(m["failures"][0]["key"], "s1/broken");
    assert!(m["failures"][0]["reason"].as_str().unwrap().contains("not a readable image"), "{m}");
    assert_eq!(m["kc"]["images"], 7);

    // karl info on a shard: counts, the failure, the KC histogram
    let shard1 = out.join("train-01.karlshard");
    let o = ok(karl!("info", shard1, "--json"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["images"].as_u64(), v["tiled_images"].as_u64()), (Some(4), Some(1)), "{v}");
    assert_eq!(v["failures"][0]["key"], "s1/broken");
    assert_eq!(v["verified"], true);

    // one image by key, at its own size
    let rec = d.join("rec");
    ok(karl!("reconstruct", shard1, "--key", "s1/big", "-o", rec));
    let img = image::open(rec.join("s1/big.png")).unwrap();
    assert_eq!((img.width(), img.height()), (100, 70));
    assert!(!rec.join("s1/0000.png").exists());
    let o = karl!("reconstruct", shard1, "--key", "nope", "-o", rec);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no image with key \"nope\""));

    // a corrupted shard is refused by info, and tokenized again by a rerun
    let mut bytes = std::fs::read(&shard1).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&shard1, &bytes).unwrap();
    let o = karl!("info", shard1);
    assert!(!o.status.success(), "info accepted a corrupted shard");
    let o = ok(karl!("tokenize", &pattern, "-o", out, "-q", "0.05"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tokenizing it again"));
    assert_eq!(shards(&out)["train-01.karlshard"], got["train-01.karlshard"]);
}

#[test]
fn shard_i_of_n_partitions_the_images_exactly_and_outputs_do_not_depend_on_n() {
    let tmp = tempfile::tempdir().unwrap();
    let root = folder(tmp.path(), 11);
    let whole = tmp.path().join("n1");
    ok(karl!("tokenize", root, "-o", whole, "--shard-size", "2"));
    let reference = shards(&whole);
    assert_eq!(reference.len(), 6);
    let all: Vec<String> = reference.values().flat_map(|(k, _)| k.clone()).collect();
    assert_eq!(all.len(), 11);
    assert!(all.contains(&"even/img000".to_string()) && all.contains(&"odd/img009".to_string()), "{all:?}");
    for n in [2usize, 3, 4, 7] {
        let out = tmp.path().join(format!("n{n}"));
        let mut seen: BTreeMap<String, (Vec<String>, Vec<u8>)> = BTreeMap::new();
        for i in 0..n {
            let spec = format!("{i}/{n}");
            ok(karl!("tokenize", root, "-o", out, "--shard-size", "2", "--shard", &spec,));
            let m = manifest(&out, i, n);
            assert_eq!(m["complete"], true);
            assert_eq!(m["units_total"], 6);
        }
        for (name, v) in shards(&out) {
            assert!(seen.insert(name.clone(), v).is_none(), "{name} written twice");
        }
        assert_eq!(seen, reference, "N = {n}: different shards than one process");
    }
}

#[test]
fn a_killed_run_rerun_gives_the_same_shards_as_one_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = folder(tmp.path(), 60);
    let args = |out: &Path| {
        vec![
            "tokenize".to_string(),
            root.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--shard-size".into(),
            "3".into(),
            "--batch".into(),
            "1".into(),
        ]
    };
    let clean = tmp.path().join("clean");
    ok(Command::new(env!("CARGO_BIN_EXE_karl")).args(args(&clean)).output().unwrap());
    let reference = shards(&clean);
    assert_eq!(reference.len(), 20);

    let out = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_karl")).args(args(&out)).spawn().unwrap();
    // kill as soon as the first shard is complete
    let t0 = std::time::Instant::now();
    while !out.join("images-000000.karlshard").exists() {
        assert!(t0.elapsed().as_secs() < 120, "no shard after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = shards(&out);
    assert!(
        !partial.is_empty() && partial.len() < reference.len(),
        "the kill did not interrupt the run: {} shards",
        partial.len()
    );
    for (name, v) in &partial {
        assert_eq!(Some(v), reference.get(name), "{name} differs after the kill");
    }
    let o = ok(Command::new(env!("CARGO_BIN_EXE_karl")).args(args(&out)).output().unwrap());
    assert_eq!(shards(&out), reference);
    let m = manifest(&out, 0, 1);
    let existing = m["shards"].as_array().unwrap().iter().filter(|s| s["status"] == "existing").count();
    assert_eq!(existing, partial.len(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(m["images"], 60);
}

#[test]
fn bad_shard_arguments_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = folder(tmp.path(), 2);
    let o = karl!("tokenize", root, "--shard", "2/2", "-o", "x");
    assert!(String::from_utf8_lossy(&o.stderr).contains("need 0 ≤ I < N"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = karl!("tokenize", root, "--shards");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out DIR"));
    let list = tmp.path().join("list.txt");
    std::fs::write(
        &list,
        format!("{}\n# comment\n{}/missing.png\n", root.join("even/img000.png").display(), root.display()),
    )
    .unwrap();
    let o = karl!("tokenize", "--list", list, "-o", "x");
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.png: no such file"));
}
