//! The shared wasmtime engine: pooling allocator, copy-on-write memory images and an epoch
//! ticker fine enough for millisecond timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
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
}
