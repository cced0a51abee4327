//! A stable-toolchain stand-in for the cargo-fuzz target (`webhook/fuzz`): mutated fixture
//! files through the request parser never panic, and what it accepts is well-formed.

mod common;

use common::fixtures::workspace_root;
use supsvc_policy_host::admission::{AdmissionResponse, parse_review, review_response};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"{",
    b"[",
    b"}",
    b"]",
    b"\"",
    b"\\",
    b"null",
    b"\"uid\":\"\"",
    b"\xff",
    b"\"request\":",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(4) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            1 => data.truncate(at),
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            _ => {
                let piece = INTERESTING[rng.below(INTERESTING.len())].repeat(rng.below(300));
                data.splice(at..at, piece);
            }
        }
    }
    data
}

/// The body's `request` as serde_json captures it (other fields are skipped, not checked).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    request: &'a serde_json::value::RawValue,
}

#[test]
fn mutated_reviews_never_panic_the_parser() {
    let dir = workspace_root().join("tests/fixtures/admission/webhook");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        match parse_review(&input) {
            Ok(review) => {
                accepted += 1;
                assert!(!review.uid.is_empty());
                let request: serde_json::Value = serde_json::from_slice(&review.request).unwrap();
                assert!(request.is_object());
                // The policies get the request's bytes exactly as they are in the body.
                let body: Envelope<'_> = serde_json::from_slice(&input).unwrap();
                assert_eq!(body.request.get().as_bytes(), &*review.request);
                let response: serde_json::Value = serde_json::from_slice(&review_response(
                    &review.uid,
                    &AdmissionResponse::default(),
                ))
                .unwrap();
                assert_eq!(response["response"]["uid"], review.uid.as_str());
            }
            Err(error) => {
                refused += 1;
                assert!(!error.to_string().is_empty());
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}
