//! What `/proc` says: a process's CPU time and memory, and the machine's
//! description for the report.

/// CPU time a process has used, in seconds: the sum over its threads of
/// `/proc/<pid>/task/*/schedstat`, which counts nanoseconds (`/proc/<pid>/stat`
/// counts 10 ms ticks, too coarse for an idle worker). Threads that exited are
/// not counted, so the processes measured avoid short-lived threads (the idle
/// worker reaches its controller by IP: no DNS lookup thread).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut nanos: Option<u64> = None;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        if let Some(n) = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            *nanos.get_or_insert(0) += n;
        }
    }
    nanos.map(|n| n as f64 / 1e9)
}

/// A kB figure of `/proc/<pid>/status`, such as `VmRSS:` or `VmHWM:` (its peak).
pub fn proc_status_kb(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// "2 cores (AMD EPYC), 24 GiB RAM, Linux 6.18…".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = proc_meminfo_gib()
        .map(|g| format!("{g:.0} GiB"))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {memory} RAM, Linux {}",
        kernel.trim()
    )
}

fn proc_meminfo_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}
