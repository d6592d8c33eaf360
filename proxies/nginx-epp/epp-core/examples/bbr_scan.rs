//! CPU cost of body-based routing's model scan alone (the part BBR adds per request besides
//! setting one header), for OpenAI chat bodies with the model last (every byte before it is
//! walked) and first. Not a test: timings are printed, never asserted.
//!   cargo run --release -p epp-core --example bbr_scan
use epp_core::bbr::{scan, ScanOutcome};
use std::time::Instant;

fn chat_body(size: usize, model_last: bool) -> Vec<u8> {
    let (head, tail) = if model_last {
        (r#"{"messages":[{"role":"user","content":""#.to_owned(), r#""}],"model":"llama-3-8b"}"#.to_owned())
    } else {
        (r#"{"model":"llama-3-8b","messages":[{"role":"user","content":""#.to_owned(), r#""}]}"#.to_owned())
    };
    let words = b"the quick brown fox jumps over the lazy dog ";
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut b = head.into_bytes();
    b.extend((0..pad).map(|i| words[i % words.len()]));
    b.extend_from_slice(tail.as_bytes());
    b
}

fn main() {
    for size in [1024usize, 64 * 1024, 1024 * 1024] {
        for last in [true, false] {
            let body = chat_body(size, last);
            assert_eq!(scan(&body, u64::MAX), ScanOutcome::Model("llama-3-8b".into()));
            let iters = (256 * 1024 * 1024 / size).clamp(200, 200_000);
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(scan(std::hint::black_box(&body), u64::MAX));
            }
            let ns = t.elapsed().as_nanos() as f64 / iters as f64;
            println!(
                "{:>8} B, model {:<5}: {:>10.2} µs per body, {:>6.0} MB/s ({iters} iterations)",
                size,
                if last { "last" } else { "first" },
                ns / 1000.0,
                size as f64 / ns * 1000.0
            );
        }
    }
}
