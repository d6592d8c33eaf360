//! A compiled, minimal EPP for benchmarks of the nginx module: answers every ext_proc stream
//! with one pick after an optional delay (`x-eppkit-delay-ms` request header, or the default),
//! so the EPP is not the bottleneck when the module's own throughput is measured.
//!
//!   bench_epp <listen ip:port> <endpoint ip:port> [default delay ms]
//! Prints `grpc listening on <addr>` when ready.

use epp_core::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use epp_core::pb::envoy::service::ext_proc::v3 as ep;
use ep::external_processor_server::{ExternalProcessor, ExternalProcessorServer};
use ep::processing_request::Request as Rq;
use ep::processing_response::Response as Rs;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

struct Epp {
    endpoint: String,
    delay_ms: u64,
}

type Out = Pin<Box<dyn Stream<Item = Result<ep::ProcessingResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalProcessor for Epp {
    type ProcessStream = Out;

    async fn process(&self, req: Request<Streaming<ep::ProcessingRequest>>) -> Result<Response<Out>, Status> {
        let mut input = req.into_inner();
        let endpoint = self.endpoint.clone();
        let default_delay = self.delay_ms;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut delay = default_delay;
            let mut body_msgs = 0usize;
            // Read until the request has ended (headers with end_of_stream, or the last body chunk).
            while let Some(Ok(m)) = input.next().await {
                match m.request {
                    Some(Rq::RequestHeaders(h)) => {
                        for hv in h.headers.map(|x| x.headers).unwrap_or_default() {
                            if hv.key == "x-eppkit-delay-ms" {
                                delay = String::from_utf8_lossy(&hv.raw_value).parse().unwrap_or(delay);
                            }
                        }
                        if h.end_of_stream {
                            break;
                        }
                    }
                    Some(Rq::RequestBody(b)) => {
                        body_msgs += 1;
                        if b.end_of_stream {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let pick = ep::ProcessingResponse {
                response: Some(Rs::RequestHeaders(ep::HeadersResponse {
                    response: Some(ep::CommonResponse {
                        header_mutation: Some(ep::HeaderMutation {
                            set_headers: vec![HeaderValueOption {
                                header: Some(HeaderValue {
                                    key: "x-gateway-destination-endpoint".into(),
                                    value: String::new(),
                                    raw_value: endpoint.into_bytes(),
                                }),
                                ..Default::default()
                            }],
                            remove_headers: vec![],
                        }),
                        ..Default::default()
                    }),
                })),
                ..Default::default()
            };
            if tx.send(Ok(pick)).await.is_err() {
                return;
            }
            for _ in 0..body_msgs.min(1) {
                let _ = tx
                    .send(Ok(ep::ProcessingResponse {
                        response: Some(Rs::RequestBody(ep::BodyResponse::default())),
                        ..Default::default()
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_epp <listen ip:port> <endpoint ip:port> [default delay ms]");
        std::process::exit(2);
    }
    let delay_ms = args.get(3).and_then(|d| d.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args[1]).await.expect("bind");
        println!("grpc listening on {}", listener.local_addr().unwrap());
        // TCP_NODELAY: with Nagle, the pick's small frames can wait for a delayed ACK (~40 ms).
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        });
        // hyper's server default of 200 concurrent streams would cap 50 ms picks at 4,000/s per connection.
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(100_000))
            .add_service(ExternalProcessorServer::new(Epp { endpoint: args[2].clone(), delay_ms }))
            .serve_with_incoming(incoming)
            .await
            .expect("serve");
    });
}
