//! The policy host against well-behaved and hostile WAT policies.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::wat_policies::{Behaviour, wasm};
use supsvc_policy_host::{
    HostOptions, IDLE_TICKS_BEFORE_PARKING, LoadError, PolicyError, PolicyHost, PolicySpec,
};

fn host() -> PolicyHost {
    PolicyHost::new(HostOptions::default()).unwrap()
}

fn request() -> Arc<[u8]> {
    Arc::from(&br#"{"uid":"1","operation":"CREATE","object":{"kind":"Pod"}}"#[..])
}

fn spec(name: &str, behaviour: Behaviour) -> PolicySpec {
    PolicySpec {
        timeout: Duration::from_millis(50),
        memory_limit: 16 << 20,
        ..PolicySpec::new(name, wasm(behaviour))
    }
}

#[test]
fn well_behaved_policies_give_their_verdicts() {
    let host = host();
    let accept = host.load(spec("accept", Behaviour::Accept)).unwrap();
    let reject = host.load(spec("reject", Behaviour::Reject)).unwrap();
    let warn = host
        .load(spec("warn", Behaviour::AcceptWithWarning))
        .unwrap();

    assert!(accept.validate(&request()).unwrap().accepted);
    let verdict = reject.validate(&request()).unwrap();
    assert!(!verdict.accepted);
    assert_eq!(
        verdict.message.as_deref(),
        Some("rejected by the wat policy")
    );
    assert_eq!(verdict.code, Some(403));
    let verdict = warn.validate(&request()).unwrap();
    assert_eq!(verdict.warnings, Some(vec!["careful".to_string()]));
    assert_eq!(verdict.audit_annotations.unwrap()["wat/seen"], "yes");
}

#[test]
fn infinite_loop_times_out_in_milliseconds() {
    let host = host();
    let looping = host.load(spec("loop", Behaviour::InfiniteLoop)).unwrap();
    let started = Instant::now();
    let error = looping.validate(&request()).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.to_string(), "policy loop timed out after 50 ms");
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}

/// The epoch ticker parks while no evaluation runs; an evaluation after a quiet spell wakes it,
/// so a looping policy still ends at its timeout instead of running on.
#[test]
fn a_looping_policy_times_out_after_the_host_was_idle() {
    let host = host();
    let looping = Arc::new(host.load(spec("loop", Behaviour::InfiniteLoop)).unwrap());
    for _ in 0..2 {
        std::thread::sleep(supsvc_policy_host::EPOCH_TICK * (2 * IDLE_TICKS_BEFORE_PARKING + 50));
        // On another thread: were the ticker not woken, the guest would loop forever, and this
        // test would fail after a minute rather than hang.
        let (sender, receiver) = std::sync::mpsc::channel();
        let policy = Arc::clone(&looping);
        std::thread::spawn(move || sender.send(policy.validate(&request())));
        let result = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the looping policy was not interrupted: the epoch ticker did not wake");
        let error = result.unwrap_err();
        assert_eq!(error.to_string(), "policy loop timed out after 50 ms");
    }
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let host = host();
    let hog = host
        .load(spec("hog", Behaviour::UnboundedAllocation))
        .unwrap();
    let error = hog.validate(&request()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "policy hog exceeded its memory limit of 16 MiB"
    );
}

#[test]
fn trap_and_garbage_are_reported_as_such() {
    let host = host();
    let trap = host.load(spec("trap", Behaviour::Trap)).unwrap();
    let error = trap.validate(&request()).unwrap_err();
    assert!(matches!(error, PolicyError::Trap { .. }), "{error}");
    assert!(
        error.to_string().starts_with("policy trap trapped: "),
        "{error}"
    );
    assert!(error.to_string().contains("unreachable"), "{error}");

    let garbage = host
        .load(spec("garbage", Behaviour::InvalidOutput))
        .unwrap();
    let error = garbage.validate(&request()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("policy garbage returned invalid output: "),
        "{error}"
    );

    let failing = host.load(spec("failing", Behaviour::GuestError)).unwrap();
    let error = failing.validate(&request()).unwrap_err();
    assert_eq!(error.to_string(), "policy failing failed: guest failed");
}

#[test]
fn hostile_policies_leave_others_unaffected() {
    let host = host();
    let accept = Arc::new(host.load(spec("accept", Behaviour::Accept)).unwrap());
    let hostile: Vec<_> = [
        Behaviour::InfiniteLoop,
        Behaviour::UnboundedAllocation,
        Behaviour::Trap,
        Behaviour::InvalidOutput,
    ]
    .into_iter()
    .map(|b| host.load(spec(&format!("{b:?}"), b)).unwrap())
    .collect();
    std::thread::scope(|scope| {
        for policy in &hostile {
            scope.spawn(|| {
                for _ in 0..3 {
                    assert!(policy.validate(&request()).is_err());
                }
            });
        }
        scope.spawn(|| {
            for _ in 0..200 {
                assert!(accept.validate(&request()).unwrap().accepted);
            }
        });
    });
    assert!(accept.validate(&request()).unwrap().accepted);
}

#[test]
fn bad_settings_refuse_the_policy() {
    let error = host()
        .load(spec("picky", Behaviour::RefuseSettings))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "policy picky: settings rejected: setting 'x' is required"
    );
}

#[test]
fn digest_pin_mismatch_refuses_the_policy() {
    let host = host();
    let mut pinned = spec("pinned", Behaviour::Accept);
    pinned.sha256 = Some("00".repeat(32));
    assert!(matches!(
        host.load(pinned).unwrap_err(),
        LoadError::DigestMismatch { .. }
    ));

    let mut pinned = spec("pinned", Behaviour::Accept);
    let digest = host.load(pinned.clone()).unwrap().sha256().to_string();
    pinned.sha256 = Some(digest);
    assert!(host.load(pinned).is_ok());
}

#[test]
fn non_wapc_modules_are_refused() {
    let empty = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    let error = host().load(PolicySpec::new("empty", empty)).unwrap_err();
    assert!(error.to_string().contains("no `__guest_call`"), "{error}");

    let error = host()
        .load(PolicySpec::new("junk", b"junk".to_vec()))
        .unwrap_err();
    assert!(
        error.to_string().contains("not a valid WebAssembly module"),
        "{error}"
    );

    let imports_unknown = wat::parse_str(
        r#"(module (import "env" "secret" (func)) (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))"#,
    )
    .unwrap();
    let error = host()
        .load(PolicySpec::new("greedy", imports_unknown))
        .unwrap_err();
    assert!(error.to_string().contains("cannot link"), "{error}");

    // Exports of the wrong type are refused when the policy loads, not at every request.
    for (name, exports, expected) in [
        (
            "odd",
            r#"(func (export "__guest_call") (param i32) (result i32) (i32.const 1))"#,
            "`__guest_call` must be (i32, i32) -> i32, but is (i32) -> (i32)",
        ),
        (
            "odd-start",
            r#"(func (export "_start") (param i32))
               (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1))"#,
            "`_start` must take and return nothing",
        ),
    ] {
        let module = wat::parse_str(format!(
            r#"(module (memory (export "memory") 1) {exports})"#
        ))
        .unwrap();
        let error = host().load(PolicySpec::new(name, module)).unwrap_err();
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
}

#[test]
fn large_requests_reach_the_guest() {
    let host = host();
    let accept = host.load(spec("accept", Behaviour::Accept)).unwrap();
    let big = format!(
        r#"{{"uid":"1","object":{{"data":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    let request: Arc<[u8]> = Arc::from(big.into_bytes());
    assert!(accept.validate(&request).unwrap().accepted);
}

#[test]
fn compiled_modules_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = HostOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..HostOptions::default()
    };
    let first = PolicyHost::new(options.clone()).unwrap();
    first.load(spec("accept", Behaviour::Accept)).unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1);

    let second = PolicyHost::new(options).unwrap();
    let policy = second.load(spec("accept", Behaviour::Accept)).unwrap();
    assert!(policy.validate(&request()).unwrap().accepted);
}

/// A WASI guest looks for environment variables and preopened directories: it finds neither.
#[test]
fn wasi_guests_see_no_environment_and_no_files() {
    let probe = wat::parse_str(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"valid\":true}")
  (data (i32.const 32) "{\"accepted\":true}")
  (data (i32.const 64) "{\"accepted\":false,\"message\":\"host leaked\"}")
  (func (export "__guest_call") (param $op_len i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 0) (i32.const 14)) (return (i32.const 1))))
    ;; environ count at 512; errno of fd_prestat_get(3) must be EBADF (8): no preopened dir
    (drop (call $environ_sizes_get (i32.const 512) (i32.const 516)))
    (if (i32.and
          (i32.eqz (i32.load (i32.const 512)))
          (i32.eq (call $fd_prestat_get (i32.const 3) (i32.const 520)) (i32.const 8)))
      (then (call $guest_response (i32.const 32) (i32.const 17)))
      (else (call $guest_response (i32.const 64) (i32.const 42))))
    (i32.const 1)))"#,
    )
    .unwrap();
    // The test process has environment variables (PATH, CARGO_*): the guest must see none.
    let policy = host().load(PolicySpec::new("probe", probe)).unwrap();
    let verdict = policy.validate(&request()).unwrap();
    assert!(verdict.accepted, "{verdict:?}");
}

/// Every evaluation is a fresh instance: what one request left in the guest's globals or linear
/// memory is gone for the next, even though the pooling allocator reuses the memory's slot and
/// keeps its pages resident (only the dirtied pages are reset). Kubewarden's policy-server keeps
/// instances between requests; this host must not (issue 19).
#[test]
fn no_state_survives_from_one_request_to_the_next() {
    let stateful = wat::parse_str(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") 1)
  (global $seen (mut i32) (i32.const 0))
  (data (i32.const 0) "{\"valid\":true}")
  (data (i32.const 32) "{\"accepted\":true}")
  (data (i32.const 64) "{\"accepted\":false,\"message\":\"state leaked\"}")
  (func (export "__guest_call") (param $op_len i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 0) (i32.const 14)) (return (i32.const 1))))
    ;; a fresh instance: the global is 0 and the memory cell at 40000 (a page of its own) is 0
    (if (i32.and (i32.eqz (global.get $seen)) (i32.eqz (i32.load (i32.const 40000))))
      (then (call $guest_response (i32.const 32) (i32.const 17)))
      (else (call $guest_response (i32.const 64) (i32.const 43))))
    (global.set $seen (i32.const 1))
    (i32.store (i32.const 40000) (i32.const 1))
    (i32.const 1)))"#,
    )
    .unwrap();
    let policy = host().load(PolicySpec::new("stateful", stateful)).unwrap();
    for attempt in 1..=3 {
        let verdict = policy.validate(&request()).unwrap();
        assert!(verdict.accepted, "request {attempt}: {verdict:?}");
    }
}
