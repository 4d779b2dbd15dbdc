//! Asset serving: content types, gzip and its absence, ETags and 304, immutable hashed names,
//! 404 for unknown paths, the Content Security Policy, and pages that refer only to assets
//! that exist.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::*;

async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    router::<()>().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

async fn body_bytes(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap().to_vec()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).expect("valid gzip");
    text
}

fn header_of<'a>(response: &'a Response, name: header::HeaderName) -> &'a str {
    response.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn pages_are_html_with_the_policy_and_no_cache() {
    for path in ["/", "/dashboard"] {
        let response = get(path, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header_of(&response, header::CONTENT_SECURITY_POLICY), CONTENT_SECURITY_POLICY);
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'") && !CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header_of(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header_of(&response, header::CONTENT_ENCODING), "", "not gzip unless asked");
        let text = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(text.starts_with("<!doctype html>"), "{path}");
        assert!(!text.contains("<script>") && !text.contains(" style="), "{path}: inline code breaks the policy");
    }
}

#[tokio::test]
async fn gzip_is_sent_when_accepted_and_decodes_to_the_plain_page() {
    let plain = body_bytes(get("/", &[]).await).await;
    let response = get("/", &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(header_of(&response, header::CONTENT_ENCODING), "gzip");
    assert_eq!(header_of(&response, header::VARY), "Accept-Encoding");
    let compressed = body_bytes(response).await;
    assert!(compressed.len() < plain.len());
    assert_eq!(gunzip(&compressed).as_bytes(), &plain[..]);
    let refused = get("/", &[("accept-encoding", "gzip;q=0, identity")]).await;
    assert_eq!(header_of(&refused, header::CONTENT_ENCODING), "");
}

#[tokio::test]
async fn every_asset_a_page_names_is_served_immutable_with_its_type() {
    let page = String::from_utf8(body_bytes(get("/", &[]).await).await).unwrap()
        + &String::from_utf8(body_bytes(get("/dashboard", &[]).await).await).unwrap();
    let referenced: Vec<&str> = page.split("\"/ui/").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
    assert!(referenced.len() >= 6, "{referenced:?}");
    for file in referenced {
        let response = get(&format!("/ui/{file}"), &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{file}");
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "public, max-age=31536000, immutable", "{file}");
        let expected = match file.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(header_of(&response, header::CONTENT_TYPE), expected, "{file}");
        assert!(file.split('.').nth(1).is_some_and(|hash| hash.len() == 10), "{file} has a content hash");
    }
}

#[tokio::test]
async fn plain_asset_names_are_served_but_revalidated() {
    let response = get("/ui/chat.js", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
}

#[tokio::test]
async fn a_matching_etag_gets_304_without_a_body() {
    let first = get("/", &[]).await;
    let etag = header_of(&first, header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = get("/", &[("if-none-match", &format!("\"other\", {etag}"))]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), etag);
    assert!(body_bytes(again).await.is_empty());
    let stale = get("/", &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    for path in ["/ui/missing.js", "/ui/index.html", "/ui/chat.0000000000.js"] {
        let response = get(path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), "application/json");
        let body: String = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(body.contains("\"error\""), "{body}");
    }
    let outside = get("/nothing-here", &[]).await;
    assert_eq!(outside.status(), StatusCode::NOT_FOUND, "only the UI routes are the UI's");
}

/// Bytes a browser receives for `/` and everything it loads, compressed (the page weight).
fn playground_weight() -> usize {
    let page = ASSETS.iter().find(|a| a.name == "index.html").expect("index.html is embedded");
    let text = gunzip(page.gzip);
    let loaded = ASSETS.iter().filter(|a| a.versioned.is_some_and(|v| text.contains(&format!("/ui/{v}"))));
    page.gzip.len() + loaded.map(|a| a.gzip.len()).sum::<usize>()
}

#[test]
fn the_playground_is_small() {
    let weight = playground_weight();
    assert!(weight > 5_000 && weight < 60_000, "{weight} bytes over the wire for /");
}
