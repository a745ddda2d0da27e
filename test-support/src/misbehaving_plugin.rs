//! A fake KMS plugin on a unix socket that misbehaves below the gRPC
//! layer, written with raw HTTP/2 (`h2`): what no well-behaved server
//! library would let a test send.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8s_envelope::kms::{GrpcClient, KmsEndpoint, KmsErrorKind};
use k8s_envelope::Error;
use tokio::net::UnixListener;

/// How the fake plugin misbehaves.
#[derive(Clone, Copy)]
pub enum Fake {
    /// Accepts connections and never says a word, not even HTTP/2.
    Mute,
    /// Speaks HTTP/2 and takes every request, never answering it.
    Stalls,
    /// Answers every call with a gRPC message whose length prefix claims
    /// 4 GiB, sends a few bytes of it and keeps the stream open.
    ClaimsGigabytes,
}

/// Serves `fake` on a fresh socket in `dir`; runs until the runtime ends.
pub async fn serve(dir: &Path, fake: Fake) -> GrpcClient {
    let socket = dir.join("kms.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Fake::Mute = fake {
                    // The task owns the stream: the connection stays
                    // open, silent, for good.
                    return std::future::pending::<()>().await;
                }
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                // Keep every stream open; polling `accept` drives the
                // connection.
                let (mut unanswered, mut open) = (Vec::new(), Vec::new());
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    if let Fake::ClaimsGigabytes = fake {
                        let response = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .expect("response");
                        let Ok(mut send) = respond.send_response(response, false) else {
                            continue;
                        };
                        let frame = Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
                        let _ = send.send_data(frame, false);
                        open.push(send);
                    } else {
                        unanswered.push(respond);
                    }
                }
            });
        }
    });
    let endpoint = KmsEndpoint::socket_file(&socket).expect("endpoint");
    GrpcClient::new(endpoint, TIMEOUT)
}

pub const TIMEOUT: Duration = Duration::from_millis(500);

/// Calls v2 Status and v1 Version, and returns their errors.
pub async fn call_both(client: &GrpcClient) -> Vec<(Error, Duration)> {
    let mut errors = Vec::new();
    let start = Instant::now();
    let e = client.as_v2().status().await.expect_err("no answer");
    errors.push((e, start.elapsed()));
    let start = Instant::now();
    let e = client.as_v1().version().await.expect_err("no answer");
    errors.push((e, start.elapsed()));
    errors
}

pub fn kind(e: &Error) -> &KmsErrorKind {
    match e {
        Error::Kms(e) => e.kind(),
        other => panic!("not a KMS error: {other}"),
    }
}
