//! A child process's peak memory: the kernel's high-water mark of its
//! resident set (`VmHWM` in `/proc/PID/status`), read until it exits (the
//! mark only grows, so the last reading before the exit is the peak but
//! for the last few milliseconds), or, for a process that may live only
//! milliseconds, the peak the kernel reports when it is reaped.

use std::fs;
use std::process::{Child, Command, ExitStatus, Output};
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

/// Runs `command` to its end and returns its output and its peak resident
/// set in KiB, as the kernel reports it when the process is reaped
/// (`ru_maxrss` of `getrusage(RUSAGE_CHILDREN)`), however short it lived.
/// std has no `wait4`, and this crate no unsafe code: a `python3` (on every
/// machine CI runs on) runs the command and reads its usage. The figure has
/// the forking python's resident set (about 10 MB) as its floor: the
/// kernel keeps the high-water mark across `exec`. It can read high, never
/// low.
pub fn run_measuring(command: &Command) -> std::io::Result<(Output, u64)> {
    let dir = tempfile::tempdir()?;
    let report = dir.path().join("maxrss");
    const WRAPPER: &str = "import resource, subprocess, sys\n\
        code = subprocess.call(sys.argv[2:])\n\
        open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let mut wrapped = Command::new("python3");
    wrapped
        .args(["-c", WRAPPER])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let output = wrapped.stdin(std::process::Stdio::null()).output()?;
    let peak = fs::read_to_string(&report)?
        .trim()
        .parse()
        .map_err(|e| std::io::Error::other(format!("ru_maxrss: {e}")))?;
    Ok((output, peak))
}
