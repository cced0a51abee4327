//! The shared wasmtime engine: pooling allocator, copy-on-write memory images and an epoch
//! ticker fine enough for millisecond timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances: the granularity of every policy timeout.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Sizing of the engine, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Instances alive at once across all policies (the pooling allocator's slots).
    pub max_concurrent_instances: u32,
    /// The largest memory limit any policy may be given.
    pub max_memory_bytes: usize,
    /// Bytes of the pages an instance dirtied that are reset in place (memset, or copied back from
    /// the module's data) when it ends, not released with madvise: they stay mapped, so the next
    /// evaluation does not page-fault them back in. Where the kernel has `PAGEMAP_SCAN` (Linux
    /// 6.7+) only the dirtied pages are reset, so a generous figure costs nothing.
    pub keep_resident_bytes: usize,
    /// Count the WebAssembly instructions each evaluation executes (wasmtime's fuel, about one
    /// unit per instruction), for [`Policy::instructions`](super::Policy::instructions): a
    /// measure of a policy's cost that does not vary with the machine's load. Costs a little
    /// speed, so it is off in the webhook.
    pub count_instructions: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_concurrent_instances: 128,
            max_memory_bytes: 1 << 30,
            keep_resident_bytes: 1 << 20,
            count_instructions: false,
        }
    }
}

pub(crate) fn build_engine(options: &EngineOptions) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(options.max_concurrent_instances)
        .total_memories(options.max_concurrent_instances)
        .total_tables(options.max_concurrent_instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(options.max_memory_bytes)
        .linear_memory_keep_resident(options.keep_resident_bytes)
        .table_keep_resident(16 << 10)
        // Reset only the pages an evaluation dirtied: without it every evaluation memsets the
        // whole kept region or page-faults its pages back in (8 faults a request for the guards).
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(options.count_instructions)
        // One Cranelift thread: compiling every function of a module at once (a thread per core)
        // held each thread's compiler state at the same time, which made a first start with an
        // empty module cache peak far above the server's serving footprint (BENCHMARKS.md,
        // issue 19). The modules compile once, then load from the cache.
        .parallel_compilation(false);
    // For profiling guests: `perf` resolves JIT frames through /tmp/perf-PID.map.
    if std::env::var_os("SUPSVC_WASM_PERFMAP").is_some_and(|v| !v.is_empty() && v != "0") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:#}"))
}

/// Ticks the ticker goes on for after the last evaluation ends before it parks: under load it
/// never parks, and a webhook with no requests wakes no thread (it woke 1,000 times a second).
pub const IDLE_TICKS_BEFORE_PARKING: u32 = 100;

/// Advances the engine's epoch every [`EPOCH_TICK`] while evaluations run, until dropped.
///
/// Only an evaluation in flight needs the epoch to move (its deadline is set relative to the
/// epoch when it starts, [`deadline_ticks`]). After [`IDLE_TICKS_BEFORE_PARKING`] ticks with none
/// in flight the thread parks; [`EpochTicker::enter`] wakes it before the evaluation sets its
/// deadline.
pub(crate) struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    stop: AtomicBool,
    /// Evaluations in flight.
    active: AtomicUsize,
    /// The ticker is parked, or about to: an evaluation that sees it set unparks the thread.
    parked: AtomicBool,
}

/// One evaluation in flight: the ticker keeps ticking until every guard is dropped.
pub(crate) struct Evaluating<'a>(&'a TickerShared);

impl Drop for Evaluating<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<Self> {
        let shared = Arc::new(TickerShared {
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
        });
        let weak = engine.weak();
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                let mut idle = 0u32;
                while !state.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                    idle = if state.active.load(Ordering::SeqCst) == 0 {
                        idle + 1
                    } else {
                        0
                    };
                    if idle >= IDLE_TICKS_BEFORE_PARKING {
                        // Announce the park, then look again: an evaluation that started in
                        // between either sees `parked` (and unparks this thread, which makes
                        // `park` return at once) or is seen here. Both sides use SeqCst.
                        state.parked.store(true, Ordering::SeqCst);
                        while state.active.load(Ordering::SeqCst) == 0
                            && !state.stop.load(Ordering::SeqCst)
                        {
                            std::thread::park();
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        idle = 0;
                    }
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks an evaluation in flight, waking the ticker if it is parked. Call it before setting
    /// the evaluation's epoch deadline; the evaluation ends when the guard is dropped.
    pub(crate) fn enter(&self) -> Evaluating<'_> {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
        Evaluating(&self.shared)
    }

    /// Whether the ticker thread is parked (or about to park) for want of evaluations.
    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Epoch ticks to allow for a timeout: one extra tick, since the current one is partly spent.
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros().max(1);
    (timeout.as_micros().div_ceil(tick) as u64).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_ticks_round_up_and_add_one() {
        for (ms, ticks) in [(0, 1), (1, 2), (50, 51), (1000, 1001)] {
            assert_eq!(deadline_ticks(Duration::from_millis(ms)), ticks, "{ms} ms");
        }
        assert_eq!(deadline_ticks(Duration::from_micros(1500)), 3);
    }

    /// Waits up to 30 s for `condition`: a liveness check, not a measure of speed.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn the_ticker_parks_when_idle_and_ticks_again_for_an_evaluation() {
        let engine = build_engine(&EngineOptions::default()).unwrap();
        let ticker = EpochTicker::start(&engine).unwrap();
        assert!(eventually(|| ticker.is_parked()), "never parked while idle");

        // An evaluation wakes it, and it keeps ticking while the evaluation runs.
        let evaluating = ticker.enter();
        assert!(
            eventually(|| !ticker.is_parked()),
            "not woken by an evaluation"
        );
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let module = wasmtime::Module::new(
            &engine,
            wat::parse_str(r#"(module (func (export "spin") (loop (br 0))))"#).unwrap(),
        )
        .unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let trap = spin.call(&mut store, ()).unwrap_err();
        assert_eq!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
        drop(evaluating);

        // Idle again: it parks again; dropping it stops the thread even while parked.
        assert!(eventually(|| ticker.is_parked()), "never parked again");
        drop(ticker);
    }
}
