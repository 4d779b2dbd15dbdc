//! The asset table the build step wrote: each file of `web/`, gzipped, with its content type,
//! its content-hashed name (scripts, styles, icons) and its ETag.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The name in `web/`, e.g. `chat.js`.
    pub name: &'static str,
    /// The content-hashed name the pages use, e.g. `chat.0123456789.js` (pages have none).
    pub versioned: Option<&'static str>,
    pub content_type: &'static str,
    /// A strong ETag of the uncompressed content, quoted.
    pub etag: &'static str,
    pub gzip: &'static [u8],
    /// Size before compression.
    pub plain_len: usize,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset served at `/ui/{file}`: by its hashed name or by its plain one.
pub fn by_file_name(file: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.versioned == Some(file) || (a.name == file && !a.name.ends_with(".html")))
}

/// A page by its name in `web/`.
pub fn page(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
