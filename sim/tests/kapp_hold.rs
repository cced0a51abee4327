//! Holding kapp-controller still: while held, nothing is reconciled, so nothing is written; released,
//! it goes on with what was queued meanwhile.

use std::time::{Duration, Instant};

use supsvc_sim::{SimOptions, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_controllers_write_nothing_and_go_on_when_released() {
    // The deadlock at a thousandth of real time: failing children are retried every few milliseconds.
    let sim = Simulator::start(SimOptions::new("airgap-deadlock").time_scale(0.001))
        .await
        .unwrap();
    let api = sim.api();
    let busy = api.resource_version();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        api.resource_version() > busy,
        "the controllers write on their own"
    );

    let held = sim.hold_controllers().await;
    let still = api.resource_version();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.resource_version(), still, "nothing written while held");

    drop(held);
    let released = Instant::now();
    while api.resource_version() == still {
        assert!(
            released.elapsed() < Duration::from_secs(10),
            "the controllers went on after the release"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
