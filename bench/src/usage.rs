//! CPU time and resident memory from `/proc`, per process and for the machine's PostgreSQL and
//! Redis, so each figure can say where the CPU went.

use std::collections::BTreeMap;

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User plus system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

fn command_name(pid: u32) -> Option<String> {
    Some(std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim().to_owned())
}

/// Every process whose command name is `name` (`postgres`, `redis-server`).
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| command_name(*pid).as_deref() == Some(name))
        .collect()
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The processes whose CPU a benchmark reports, by name.
#[derive(Clone)]
pub struct Watched {
    pub processes: Vec<(String, u32)>,
}

impl Watched {
    pub fn new(processes: &[(&str, u32)]) -> Self {
        let mut all: Vec<(String, u32)> = processes.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
        all.push(("load generator".to_owned(), std::process::id()));
        Self { processes: all }
    }

    /// CPU seconds so far of each watched process and of every PostgreSQL and Redis process,
    /// by group and pid.
    pub fn cpu(&self) -> Reading {
        let mut reading = BTreeMap::new();
        for (name, pid) in &self.processes {
            reading.insert((name.clone(), *pid), cpu_seconds(*pid).unwrap_or_default());
        }
        for (group, name) in [("postgresql", "postgres"), ("redis", "redis-server")] {
            for pid in pids_named(name) {
                reading.insert((group.to_owned(), pid), cpu_seconds(pid).unwrap_or_default());
            }
        }
        reading
    }
}

/// CPU seconds by group and pid at one moment.
pub type Reading = BTreeMap<(String, u32), f64>;

/// CPU seconds each group used between two readings, counted per process: a backend that
/// started in between counts from zero, and one that ended in between (whose time can no longer
/// be read) drops out rather than making its group's total shrink.
pub fn spent(before: &Reading, after: &Reading) -> BTreeMap<String, f64> {
    let mut groups = BTreeMap::new();
    for ((group, pid), end) in after {
        let start = before.get(&(group.clone(), *pid)).copied().unwrap_or_default();
        *groups.entry(group.clone()).or_default() += (end - start).max(0.0);
    }
    groups
}

/// `api 0.91 s (45%), postgresql 0.80 s (40%), …`, largest first.
pub fn describe(spent: &BTreeMap<String, f64>) -> String {
    let total: f64 = spent.values().sum();
    let mut parts: Vec<(&String, &f64)> = spent.iter().filter(|(_, s)| **s > 0.0).collect();
    parts.sort_by(|a, b| b.1.total_cmp(a.1));
    parts
        .iter()
        .map(|(group, seconds)| {
            format!("{group} {seconds:.2} s ({:.0}%)", **seconds / total.max(1e-9) * 100.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
