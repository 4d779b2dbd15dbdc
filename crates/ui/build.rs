//! Build step of the web UI: gzips every file of `web/` into OUT_DIR, gives scripts and styles
//! content-hashed names that the pages refer to (so they can be cached for good), and writes
//! the asset table that `src/assets.rs` includes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

fn main() {
    let web = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("web");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=web");
    let mut names: Vec<String> = std::fs::read_dir(&web)
        .expect("crates/ui/web is missing")
        .map(|entry| entry.unwrap().file_name().into_string().expect("asset names are UTF-8"))
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    let read = |name: &str| std::fs::read(web.join(name)).unwrap_or_else(|e| panic!("cannot read web/{name}: {e}"));
    // Subresources first: their hashed names go into the pages.
    let versioned: Vec<(String, String)> = names
        .iter()
        .filter(|name| !name.ends_with(".html"))
        .map(|name| (name.clone(), versioned_name(name, &read(name))))
        .collect();
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for name in &names {
        let mut bytes = read(name);
        if name.ends_with(".html") {
            let mut text = String::from_utf8(bytes).expect("pages are UTF-8");
            for (plain, hashed) in &versioned {
                text = text.replace(&format!("\"/ui/{plain}\""), &format!("\"/ui/{hashed}\""));
            }
            bytes = text.into_bytes();
        }
        let gz = gzip(&bytes);
        std::fs::write(out.join(format!("{name}.gz")), &gz).unwrap();
        let hashed = versioned.iter().find(|(plain, _)| plain == name).map(|(_, h)| format!("Some({h:?})")).unwrap_or("None".into());
        let _ = writeln!(
            table,
            "    Asset {{ name: {name:?}, versioned: {hashed}, content_type: {:?}, etag: \"\\\"{:016x}\\\"\", gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.gz\")), plain_len: {} }},",
            content_type(name),
            fnv1a(&bytes),
            bytes.len()
        );
    }
    table.push_str("];\n");
    std::fs::write(out.join("assets.rs"), table).unwrap();
}

/// `chat.js` -> `chat.0123456789.js`.
fn versioned_name(name: &str, bytes: &[u8]) -> String {
    let hash = format!("{:016x}", fnv1a(bytes));
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{}.{ext}", &hash[..10]),
        None => format!("{name}.{}", &hash[..10]),
    }
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        other => panic!("web/{name}: no content type for {other:?}"),
    }
}
