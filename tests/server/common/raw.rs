//! Hand-written HTTP/1.1 over a TLS stream, for what a client library hides: `Expect: 100-continue`
//! (hyper answers it once the handler starts reading the body) and a body that never comes.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::within;

/// The head of an HTTP/1.1 POST of `len` bytes to `path` that asks for `100 Continue`.
pub fn head_expecting_continue(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    )
}

/// Reads one response head: the status and the headers (names lower-cased).
pub async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> (u16, Vec<(String, String)>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = within("a response head", stream.read(&mut byte))
            .await
            .expect("the connection is readable");
        assert_eq!(
            n,
            1,
            "the connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Reads one whole response with a Content-Length: status, headers and body.
pub async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (status, headers) = read_head(stream).await;
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a content-length");
    let mut body = vec![0u8; len];
    within("a response body", stream.read_exact(&mut body))
        .await
        .expect("the whole body arrives");
    (status, headers, body)
}
