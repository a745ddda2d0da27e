//! A child process's peak memory: the kernel's high-water mark of its
//! resident set (`VmHWM` in `/proc/PID/status`), read until it exits. The
//! mark only grows, so the last reading before the exit is the peak but
//! for the last few milliseconds.

use std::fs;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Waits for `child`, reading its high-water mark every 5 ms; its exit
/// status and the peak in KiB (`None` without `/proc`).
pub fn wait_measuring(child: &mut Child) -> std::io::Result<(ExitStatus, Option<u64>)> {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib: Option<u64> = None;
    loop {
        if let Some(kib) = fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(high_water_kib)
        {
            peak_kib = Some(peak_kib.map_or(kib, |p| p.max(kib)));
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak_kib));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn high_water_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
