//! Embeds `ui-dist/` (the prebuilt Vue bundle) and `migrations/*.sql` into the
//! binary, so `cargo build` needs neither Node nor files beside the executable.
//!
//! Generated code lands in `$OUT_DIR/assets.rs` and `$OUT_DIR/migrations.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    embed_ui(&root.join("ui-dist"), &out.join("assets.rs"));
    embed_migrations(&root.join("migrations"), &out.join("migrations.rs"));
    println!("cargo:rustc-env=HOMELINE_GIT_REV={}", git_rev(&root));
    println!(
        "cargo:rustc-env=HOMELINE_SOURCE_DATE={}",
        source_date(&root)
    );
}

fn embed_ui(dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    if dir.is_dir() {
        walk(dir, &mut files);
    }
    files.sort();
    if !files.iter().any(|f| f.ends_with("index.html")) {
        println!("cargo:warning=ui-dist/index.html is missing: the web UI will answer 404");
    }
    let mut code = String::from(
        "/// Files of the built web UI, sorted by path.\npub static ASSETS: &[Asset] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(dir)
            .expect("walked below dir")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = fs::read(file).expect("read ui-dist file");
        let immutable = rel.starts_with("assets/") && has_content_hash(&rel);
        writeln!(
            code,
            "    Asset {{ path: {path:?}, body: include_bytes!({abs:?}), content_type: {ct:?}, immutable: {immutable}, etag: \"\\\"{etag:016x}\\\"\" }},",
            path = format!("/{rel}"),
            abs = file.display().to_string(),
            ct = content_type(&rel),
            etag = fnv1a64(&bytes),
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    fs::write(out, code).expect("write assets.rs");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read ui-dist") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Vite names bundled files `name-<hash>.ext`; only those may be cached forever.
fn has_content_hash(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = name.split('.').next().unwrap_or(name);
    match stem.rsplit_once('-') {
        Some((_, hash)) => {
            hash.len() >= 8 && hash.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn embed_migrations(dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).expect("read migrations/") {
        let path = entry.expect("dir entry").path();
        let file = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let (num, name) = stem
            .split_once('_')
            .unwrap_or_else(|| panic!("migration {file} must be named NNN_name.sql"));
        let version: u32 = num
            .parse()
            .unwrap_or_else(|_| panic!("migration {file}: NNN must be a number"));
        assert!(num.len() == 3, "migration {file}: use three digits");
        entries.push((version, name.to_string(), path));
    }
    entries.sort();
    for (i, (version, name, _)) in entries.iter().enumerate() {
        assert_eq!(
            *version as usize,
            i + 1,
            "migration {name}: versions must run 1, 2, 3… without gaps"
        );
    }
    let mut code = String::from(
        "/// Embedded migrations, in order.\npub static MIGRATIONS: &[Migration] = &[\n",
    );
    for (version, name, path) in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({abs:?}) }},",
            abs = path.display().to_string()
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    fs::write(out, code).expect("write migrations.rs");
}

fn git_rev(root: &Path) -> String {
    println!(
        "cargo:rerun-if-changed={}",
        root.join(".git/HEAD").display()
    );
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Unix seconds of the commit built (the doctor's "clock is obviously wrong"
/// bound); `SOURCE_DATE_EPOCH` wins, `0` outside a checkout.
fn source_date(root: &Path) -> String {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    if let Ok(v) = env::var("SOURCE_DATE_EPOCH") {
        if v.trim().parse::<i64>().is_ok() {
            return v.trim().to_string();
        }
    }
    std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| s.parse::<i64>().is_ok())
        .unwrap_or_else(|| "0".to_string())
}
