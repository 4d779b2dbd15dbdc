//! The built-in web pages of `hearth serve` and `hearth gateway`: the chat playground at `/`,
//! the live dashboard at `/dashboard`, and their scripts and styles under `/ui/`. The files
//! are compiled into the binary gzipped (see build.rs), served with their content types,
//! strong ETags, long-lived caching for content-hashed names and a Content Security Policy
//! that allows nothing from outside the server.

mod assets;

use std::io::Read;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use assets::{Asset, ASSETS};

/// Scripts, styles and connections only from the server itself; no inline code, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes of the pages; merged into a server's router before its fallback.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve_page("index.html", &headers) }))
        .route("/dashboard", get(|headers: HeaderMap| async move { serve_page("dashboard.html", &headers) }))
        .route("/ui/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { serve_file(&file, &headers) }))
}

fn serve_page(name: &str, headers: &HeaderMap) -> Response {
    match assets::page(name) {
        Some(asset) => respond(asset, false, headers),
        None => not_found(),
    }
}

fn serve_file(file: &str, headers: &HeaderMap) -> Response {
    match assets::by_file_name(file) {
        Some(asset) => respond(asset, asset.versioned == Some(file), headers),
        None => not_found(),
    }
}

/// The asset with its headers: 304 when the client holds this version, gzip when accepted.
fn respond(asset: &'static Asset, immutable: bool, request: &HeaderMap) -> Response {
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = if client_has(request, asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(request) {
        let mut r = Body::from(asset.gzip).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut plain = Vec::with_capacity(asset.plain_len);
        match flate2::read::GzDecoder::new(asset.gzip).read_to_end(&mut plain) {
            Ok(_) => Body::from(plain).into_response(),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn client_has(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*")
}

/// `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    let Some(value) = request.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else { return false };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (coding == "gzip" || coding == "*") && !refused
    })
}

fn not_found() -> Response {
    let body = r#"{"error":{"message":"Unknown page or asset.","type":"invalid_request_error","param":null,"code":null}}"#;
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests;
