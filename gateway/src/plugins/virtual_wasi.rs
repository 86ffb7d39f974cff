//! The WASI a plugin sees: the call's world and nothing of the machine's. Components built
//! for `wasm32-wasip2` import WASI to link, so the host gives them a virtual one: the wall
//! and monotonic clocks read the call's time, random numbers come from a generator seeded
//! with the call's seed, and there is no filesystem, environment, standard I/O or socket.
//! So the contract's promise holds for any guest code: the same request and seed give the
//! same answer.

use parking_lot::Mutex;
use rand_wasi::rngs::StdRng;
use rand_wasi::{Rng, SeedableRng};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// The current call's time and random state, shared by the instance's WASI context and the
/// host, which moves it to each new call.
pub struct CallWorld {
    now_ms: AtomicU64,
    random: Mutex<StdRng>,
}

impl Default for CallWorld {
    fn default() -> Self {
        Self {
            now_ms: AtomicU64::new(0),
            random: Mutex::new(StdRng::seed_from_u64(0)),
        }
    }
}

impl CallWorld {
    /// Starts a call at `now_ms` with `seed`.
    pub fn begin(&self, now_ms: u64, seed: u64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
        *self.random.lock() = StdRng::seed_from_u64(seed);
    }

    /// A WASI context over this world.
    pub fn wasi(self: &Arc<Self>) -> WasiCtx {
        WasiCtx::builder()
            .wall_clock(CallClock(Arc::clone(self)))
            .monotonic_clock(CallClock(Arc::clone(self)))
            .secure_random(SeededRandom(Arc::clone(self)))
            .insecure_random(SeededRandom(Arc::clone(self)))
            .insecure_random_seed(0)
            .build()
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms.load(Ordering::Relaxed))
    }

    fn next_u64(&self) -> u64 {
        self.random.lock().next_u64()
    }
}

/// Both clocks: the call's time, standing still for the whole call.
struct CallClock(Arc<CallWorld>);

impl HostWallClock for CallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0.now()
    }
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.0.now().as_nanos() as u64
    }
}

/// Random numbers from the call's seed.
struct SeededRandom(Arc<CallWorld>);

impl rand_wasi::TryRng for SeededRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.0.next_u64() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.random.lock().fill_bytes(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let world = CallWorld::default();
        world.begin(5, 42);
        let first: Vec<u64> = (0..4).map(|_| world.next_u64()).collect();
        world.begin(5, 42);
        let again: Vec<u64> = (0..4).map(|_| world.next_u64()).collect();
        assert_eq!(first, again);
        world.begin(5, 43);
        assert_ne!(world.next_u64(), first[0]);
        assert_eq!(world.now(), Duration::from_millis(5));
    }
}
