//! The gRPC client against an in-process ext_proc server (tonic, real sockets on 127.0.0.1):
//! picks, timeouts, errors, an absent EPP, cancellation, and one connection for many calls.

use epp_core::client::{EppCall, EppClient, EppTarget};
use epp_core::exchange::{EppStatus, Outcome, RequestData};
use epp_core::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use epp_core::pb::envoy::service::ext_proc::v3 as ep;
use epp_core::settings::BodyMode;
use ep::external_processor_server::{ExternalProcessor, ExternalProcessorServer};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, Copy)]
enum Behaviour {
    Pick,
    Sleep(u64),
    Fail,
}

struct Server {
    behaviour: Behaviour,
    /// Streams whose client went away before the answer.
    cancelled: Arc<AtomicUsize>,
    bodies: Arc<std::sync::Mutex<Vec<usize>>>,
}

type Out = Pin<Box<dyn Stream<Item = Result<ep::ProcessingResponse, Status>> + Send>>;

fn pick(v: &str) -> ep::ProcessingResponse {
    ep::ProcessingResponse {
        response: Some(ep::processing_response::Response::RequestHeaders(ep::HeadersResponse {
            response: Some(ep::CommonResponse {
                header_mutation: Some(ep::HeaderMutation {
                    set_headers: vec![HeaderValueOption {
                        header: Some(HeaderValue { key: "x-gateway-destination-endpoint".into(), value: String::new(), raw_value: v.as_bytes().to_vec() }),
                        ..Default::default()
                    }],
                    remove_headers: vec![],
                }),
                ..Default::default()
            }),
        })),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ExternalProcessor for Server {
    type ProcessStream = Out;
    async fn process(&self, req: Request<Streaming<ep::ProcessingRequest>>) -> Result<Response<Out>, Status> {
        if let Behaviour::Fail = self.behaviour {
            return Err(Status::internal("boom"));
        }
        let mut input = req.into_inner();
        let behaviour = self.behaviour;
        let cancelled = self.cancelled.clone();
        let bodies = self.bodies.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut body = 0usize;
            while let Some(Ok(m)) = input.next().await {
                match m.request {
                    Some(ep::processing_request::Request::RequestHeaders(h)) if h.end_of_stream => break,
                    Some(ep::processing_request::Request::RequestBody(b)) => {
                        body += b.body.len();
                        if b.end_of_stream {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            bodies.lock().unwrap().push(body);
            if let Behaviour::Sleep(ms) = behaviour {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = tx.closed() => { cancelled.fetch_add(1, Ordering::SeqCst); return; }
                }
            }
            let _ = tx.send(Ok(pick("10.1.2.3:8000"))).await;
            if body > 0 {
                let _ = tx
                    .send(Ok(ep::ProcessingResponse {
                        response: Some(ep::processing_response::Response::RequestBody(ep::BodyResponse::default())),
                        ..Default::default()
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

struct Running {
    port: u16,
    accepted: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    bodies: Arc<std::sync::Mutex<Vec<usize>>>,
    _rt: tokio::runtime::Runtime,
}

fn serve(behaviour: Behaviour) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let acc = accepted.clone();
    let svc = ExternalProcessorServer::new(Server { behaviour, cancelled: cancelled.clone(), bodies: bodies.clone() });
    rt.spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |s| {
            acc.fetch_add(1, Ordering::SeqCst);
            s
        });
        tonic::transport::Server::builder().add_service(svc).serve_with_incoming(incoming).await.unwrap();
    });
    Running { port, accepted, cancelled, bodies, _rt: rt }
}

fn call(port: u16, timeout_ms: u64, body: &[u8]) -> EppCall {
    EppCall {
        target: EppTarget { host: "127.0.0.1".into(), port, tls: None },
        timeout: Duration::from_millis(timeout_ms),
        mode: BodyMode::Buffered,
        header_name: "x-gateway-destination-endpoint".into(),
        request: RequestData {
            headers: vec![(":method".into(), b"POST".to_vec()), (":path".into(), b"/v1/completions".to_vec())],
            body: body.to_vec(),
            has_body: !body.is_empty(),
            subset_hint: vec![],
        },
        allow: Default::default(),
    }
}

fn run(client: &EppClient, c: EppCall) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let _h = client.spawn(c, move |o| tx.send(o).unwrap());
    rx.recv_timeout(Duration::from_secs(10)).expect("outcome")
}

#[test]
fn picks_and_reuses_one_connection() {
    let s = serve(Behaviour::Pick);
    let client = EppClient::new(1).unwrap();
    for i in 0..5 {
        let body = vec![b'x'; i * 100_000];
        match run(&client, call(s.port, 2000, &body)) {
            Outcome::Routed { endpoint, .. } => assert_eq!(endpoint, "10.1.2.3:8000"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1, "one HTTP/2 connection for all calls");
    assert_eq!(*s.bodies.lock().unwrap(), vec![0, 100_000, 200_000, 300_000, 400_000]);
}

#[test]
fn slow_epp_is_a_timeout() {
    let s = serve(Behaviour::Sleep(2000));
    let client = EppClient::new(1).unwrap();
    match run(&client, call(s.port, 100, b"{}")) {
        Outcome::Failed { status, .. } => assert_eq!(status, EppStatus::Timeout),
        other => panic!("{other:?}"),
    }
}

#[test]
fn grpc_error_and_absent_epp() {
    let s = serve(Behaviour::Fail);
    let client = EppClient::new(1).unwrap();
    match run(&client, call(s.port, 2000, b"")) {
        Outcome::Failed { status, detail } => {
            assert_eq!(status, EppStatus::Error);
            assert!(detail.contains("boom"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // A port nobody listens on: bind, learn it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    match run(&client, call(port, 2000, b"")) {
        Outcome::Failed { status, .. } => assert_eq!(status, EppStatus::Unavailable),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancel_resets_the_stream_and_reports_nothing() {
    let s = serve(Behaviour::Sleep(5000));
    let client = EppClient::new(1).unwrap();
    let (tx, rx) = mpsc::channel::<Outcome>();
    let h = client.spawn(call(s.port, 10_000, b"{}"), move |o| tx.send(o).unwrap());
    // Wait until the server has the request, then cancel.
    for _ in 0..200 {
        if !s.bodies.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    h.cancel();
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "a cancelled call reports nothing");
    for _ in 0..200 {
        if s.cancelled.load(Ordering::SeqCst) == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.cancelled.load(Ordering::SeqCst), 1, "the EPP saw the stream go away");
}
