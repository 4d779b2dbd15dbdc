//! Fake servers for the CLI's tests: an axum router served on 127.0.0.1 from its own thread.

use axum::Router;

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test process.
pub fn serve_on_localhost(app: Router) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
        });
    });
    addr
}
