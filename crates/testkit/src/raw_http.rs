//! Raw-socket helpers for connection-level tests: send bytes and read until the server closes,
//! and wait for a condition on a server's live state.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Writes `sent` on a new connection, then reads until the server closes it; panics if it is
/// still open after 10 s.
pub fn read_until_closed(addr: SocketAddr, sent: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    stream.write_all(sent).expect("write");
    let mut text = Vec::new();
    match stream.read_to_end(&mut text) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was still open after 10 s ({e}); read {:?}", String::from_utf8_lossy(&text)),
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Polls `condition` every 20 ms (blocking this thread); panics if it does not hold in 10 s.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not so within 10 s");
}
