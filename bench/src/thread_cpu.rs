//! CPU time of some of this process's threads, by thread name: the gateway a bench starts
//! runs on threads of its own (`gateway` workers, `sqlx-sqlite-worker-…`), so its CPU can be
//! told apart from the load generator's in the same process (Linux `/proc`; a thread that
//! exited during the measurement is not counted).

use std::time::Duration;

/// Thread-name prefixes of the gateway a bench starts in its own process.
pub const GATEWAY_THREADS: &[&str] = &["gateway", "sqlx-sqlite"];

/// User + system CPU time of this process's live threads whose name starts with one of
/// `prefixes`; `None` where `/proc` cannot be read.
pub fn cpu_of_threads(prefixes: &[&str]) -> Option<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_second <= 0 {
        return None;
    }
    let mut ticks: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !prefixes.iter().any(|p| name.trim_end().starts_with(p)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        ticks += stat_cpu_ticks(&stat).unwrap_or(0);
    }
    Some(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}

/// utime + stime of a `/proc/…/stat` line (fields 14 and 15; the name in parentheses may
/// hold spaces, so fields are counted after its closing one).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_after_a_name_with_spaces() {
        let stat = "42 (gateway x) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0";
        assert_eq!(stat_cpu_ticks(stat), Some(280));
    }

    #[test]
    fn a_thread_is_found_by_its_name() {
        let probe = std::thread::Builder::new()
            .name("cpu-probe".into())
            .spawn(|| {
                // Work until the kernel has charged this thread a tick (bounded).
                let mut x = 0u64;
                for round in 0..100_000u64 {
                    for i in 0..10_000u64 {
                        x = x.wrapping_add(std::hint::black_box(i * round));
                    }
                    if cpu_of_threads(&["cpu-probe"]).is_some_and(|t| t > Duration::ZERO) {
                        return true;
                    }
                }
                std::hint::black_box(x);
                false
            })
            .unwrap();
        assert!(
            probe.join().unwrap(),
            "the probe thread's CPU was never read"
        );
        assert_eq!(cpu_of_threads(&["no-such-thread"]), Some(Duration::ZERO));
    }
}
