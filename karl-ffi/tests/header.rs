//! include/karl.h is generated from this crate by cbindgen: this test regenerates it in memory
//! and fails on any drift (rewriting the file when `KARL_BLESS_HEADER=1`), checks its version
//! macros against Cargo.toml, and compiles it as C11 and C++17.
use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../include/karl.h")
}

/// The version macros inserted after the includes.
fn version_macros() -> String {
    format!(
        "#define KARL_VERSION_MAJOR {}\n#define KARL_VERSION_MINOR {}\n#define KARL_VERSION_PATCH {}\n#define KARL_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}

/// The header as cbindgen generates it now.
fn generate() -> String {
    let dir = crate_dir();
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read karl-ffi/cbindgen.toml");
    config.after_includes = Some(format!("\n{}", version_macros()));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn committed_header_matches_the_generated_one() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("KARL_BLESS_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write include/karl.h");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let (a, b): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), fresh.lines().collect());
        let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)).unwrap_or(0);
        panic!(
            "include/karl.h is out of date; first difference at line {}:\n  committed: {:?}\n  \
             generated: {:?}\nregenerate it with\n  KARL_BLESS_HEADER=1 cargo test -p karl-ffi \
             --test header\nand commit the result",
            i + 1,
            a.get(i).unwrap_or(&"<end of file>"),
            b.get(i).unwrap_or(&"<end of file>"),
        );
    }
}

#[test]
fn header_version_macros_match_cargo_version() {
    let text = std::fs::read_to_string(header_path()).expect("read include/karl.h");
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("karl.h lacks #define {name}"))
            .trim()
            .to_string()
    };
    assert_eq!(get("KARL_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(get("KARL_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(get("KARL_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    assert_eq!(get("KARL_VERSION"), format!("\"{}\"", env!("CARGO_PKG_VERSION")));
}

fn compiles(compiler: &str, args: &[&str], source: &Path) {
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(crate_dir().join("../include"))
        .arg(source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(out.status.success(), "{compiler} {args:?} rejects karl.h:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn header_compiles_as_c11_and_cpp17() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("karl-ffi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("use_header.c");
    std::fs::write(&c, "#include \"karl.h\"\nint main(void) { return karl_version() == 0; }\n").unwrap();
    let cpp = dir.join("use_header.cpp");
    std::fs::write(
        &cpp,
        "#include \"karl.h\"\nint main() { karl_model *m = nullptr; karl_model_free(m); return 0; }\n",
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| String::from("cc"));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| String::from("g++"));
    compiles(&cc, &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"], &c);
    compiles(&cxx, &["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"], &cpp);
    let _ = std::fs::remove_dir_all(&dir);
}
