//! Graceful shutdown: a review in flight when the `shutdown` future resolves is answered in full, no new
//! connection is accepted, `Running::wait()` returns once connections are drained, and the grace period
//! bounds a review that never finishes.

use crate::common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::raw::{head_expecting_continue, read_head, read_response};
use common::{DEADLINE, Protocol, Setup, TestServer, handshake, review_bytes, review_json, wait_for, within};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use volguard::adapters::server::{Limits, ServeOptions};

/// Options whose grace period is far longer than any test deadline: a test that needs the grace
/// period to pass would time out instead.
fn long_grace() -> Setup {
    Setup {
        options: ServeOptions {
            grace: Duration::from_secs(600),
            ..ServeOptions::default()
        },
        ..Setup::default()
    }
}

async fn refuses_connections(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_err()
}

/// Waits for the server to stop accepting (the accept loop notices the signal on its own task).
async fn wait_until_refused(addr: SocketAddr) {
    wait_for("the listener to close", || refuses_connections(addr)).await;
}

/// Reads until the peer closes; true when it did within [`DEADLINE`].
async fn closed_by_peer(stream: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 256];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_in_flight_over_http1_is_answered_in_full_after_shutdown() {
    let mut server = TestServer::start(long_grace()).await;
    let body = review_bytes("create-deployment");
    let mut tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    tls.write_all(head_expecting_continue("/validate", body.len()).as_bytes())
        .await
        .expect("the head is sent");
    tls.flush().await.expect("the head is flushed");
    // hyper sends 100 Continue when the handler starts reading the body: the review is in flight.
    let (status, _) = read_head(&mut tls).await;
    assert_eq!(status, 100);

    server.trigger_shutdown();
    wait_until_refused(server.addr).await;

    // The rest of the body, slowly, after the shutdown signal.
    let (first, second) = body.split_at(body.len() / 2);
    tls.write_all(first).await.expect("half the body is sent");
    tls.flush().await.expect("flushed");
    tokio::task::yield_now().await;
    tls.write_all(second).await.expect("the rest is sent");
    tls.flush().await.expect("flushed");

    let (status, _, answer) = read_response(&mut tls).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        review_json("create-deployment")["request"]["uid"]
    );
    assert_eq!(answer["response"]["allowed"], false);
    assert!(closed_by_peer(&mut tls).await, "the drained connection is closed");

    let running = server.take_running();
    within("Running::wait()", running.wait())
        .await
        .expect("the server task ends cleanly");
    assert!(
        refuses_connections(server.addr).await,
        "no new connection after shutdown"
    );
    assert!(
        refuses_connections(server.metrics_addr).await,
        "the metrics port closes too"
    );
}

/// The client's side of a TLS stream, reporting once bytes containing `marker` have been flushed
/// to the socket: from then on they are ahead of anything the client sends later.
struct FlushTap<S> {
    inner: S,
    marker: &'static [u8],
    recent: Vec<u8>,
    written: bool,
    flushed: Option<oneshot::Sender<()>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for FlushTap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FlushTap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            // Keep a marker's length of earlier bytes, so a marker split across writes is found.
            this.recent.extend_from_slice(&buf[..n]);
            if this.recent.windows(this.marker.len()).any(|w| w == this.marker) {
                this.written = true;
            }
            let keep = this.recent.len().saturating_sub(this.marker.len());
            this.recent.drain(..keep);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(())))
            && this.written
            && let Some(tx) = this.flushed.take()
        {
            let _ = tx.send(());
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_streaming_over_h2_is_answered_in_full_after_shutdown() {
    let mut server = TestServer::start(long_grace()).await;
    let uid = "4f0fbf39-b383-4d63-a5e8-631ca2782968";
    let body = review_bytes("create-deployment");
    let (first, second) = body.split_at(body.len() / 2);
    assert!(
        first.windows(uid.len()).any(|w| w == uid.as_bytes()),
        "the uid is in the first half"
    );
    let (first, second) = (Bytes::copy_from_slice(first), Bytes::copy_from_slice(second));

    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"h2"])
        .await
        .expect("the handshake succeeds");
    let (flushed_tx, flushed) = oneshot::channel();
    let tap = FlushTap {
        inner: tls,
        marker: uid.as_bytes(),
        recent: Vec::new(),
        written: false,
        flushed: Some(flushed_tx),
    };
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tap))
            .await
            .expect("an h2 connection");
    tokio::spawn(connection);
    // A first review, so the server is serving h2 on this connection (past the preface).
    let warm_up = Request::post("/validate")
        .header("host", "127.0.0.1")
        .body(
            Full::new(Bytes::from(review_bytes("create-pvc")))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("a request");
    let response = within("the first answer", sender.send_request(warm_up))
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);

    // The review: a channel-fed body. Once its first half (and so its HEADERS) is on the wire, the
    // shutdown signal fires; h2 shuts down with GOAWAY and a PING round trip, so the stream is served.
    let (chunks, rx) = mpsc::channel::<Bytes>(1);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let review = Request::post("/validate")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("a request");
    let request = tokio::spawn(sender.send_request(review));
    chunks.send(first).await.expect("the body is read");
    within("the first half to be flushed", flushed)
        .await
        .expect("the tap reports");

    server.trigger_shutdown();
    wait_until_refused(server.addr).await;
    chunks.send(second).await.expect("the body is still read");
    drop(chunks);

    let response = within("the response", request)
        .await
        .expect("the request task")
        .expect("a response after shutdown");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let answer = within("the response body", response.into_body().collect())
        .await
        .expect("the whole body")
        .to_bytes();
    let answer: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(answer["response"]["uid"], uid);
    assert_eq!(answer["response"]["allowed"], false);

    let running = server.take_running();
    within("Running::wait()", running.wait())
        .await
        .expect("the server task ends cleanly");
    assert!(
        refuses_connections(server.addr).await,
        "no new connection after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let mut server = TestServer::start(long_grace()).await;
    // Both clients keep their connection open in their pools.
    let clients = [server.client(Protocol::Http1), server.client(Protocol::Http2)];
    for client in &clients {
        let response = server
            .post(client, "/validate", review_bytes("create-pvc-dry-run"))
            .await
            .response();
        assert_eq!(response["allowed"], true);
    }
    server.trigger_shutdown();
    let running = server.take_running();
    within("Running::wait() with idle connections open", running.wait())
        .await
        .expect("the server task ends cleanly");
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_a_review_that_never_finishes() {
    let setup = Setup {
        options: ServeOptions {
            grace: Duration::from_secs(1),
            // Longer than the test deadline: only the grace period can end the stalled review.
            limits: Limits {
                request_timeout: Duration::from_secs(600),
                ..Limits::default()
            },
            ..ServeOptions::default()
        },
        ..Setup::default()
    };
    let mut server = TestServer::start(setup).await;
    let mut tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    tls.write_all(head_expecting_continue("/validate", 1000).as_bytes())
        .await
        .expect("the head is sent");
    tls.flush().await.expect("the head is flushed");
    let (status, _) = read_head(&mut tls).await;
    assert_eq!(status, 100, "the review is in flight");

    server.trigger_shutdown();
    let running = server.take_running();
    within("Running::wait() after the grace period", running.wait())
        .await
        .expect("the server task ends cleanly");
    assert!(
        refuses_connections(server.addr).await,
        "no new connection after shutdown"
    );
    // Once wait() has returned, nothing of the server is left serving: the stalled connection too.
    assert!(
        closed_by_peer(&mut tls).await,
        "the stalled connection outlived the grace period and the server"
    );
}
