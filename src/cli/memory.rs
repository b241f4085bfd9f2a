//! How much memory a run may use: the least of `MemAvailable`, the address-space limit
//! (`ulimit -v`, RLIMIT_AS) and the cgroup v2 or v1 memory limit less current usage. Off
//! Linux, where none of these can be read, a fixed bound stands in so that an absurd
//! estimate is still refused before anything is allocated.

use crate::ir::DimSpec;

/// The bound used when nothing can be read (no /proc): 1 TiB.
const FALLBACK: u64 = 1 << 40;

/// Bytes a run may allocate, or `None` when the guard is off (never: a fallback applies).
pub fn available() -> Option<u64> {
    let found = [
        mem_available(),
        address_space_limit(),
        cgroup_v2(),
        cgroup_v1(),
    ];
    Some(found.into_iter().flatten().min().unwrap_or(FALLBACK))
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `MemAvailable` from /proc/meminfo.
fn mem_available() -> Option<u64> {
    let text = read("/proc/meminfo")?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The soft RLIMIT_AS from /proc/self/limits ("Max address space  unlimited  unlimited
/// bytes") less the address space already mapped (`VmSize`: code, thread stacks).
fn address_space_limit() -> Option<u64> {
    let text = read("/proc/self/limits")?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mapped_kib: u64 = read("/proc/self/status")
        .and_then(|t| {
            let l = t.lines().find(|l| l.starts_with("VmSize:"))?.to_string();
            l.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    Some(soft.saturating_sub(mapped_kib.saturating_mul(1024)))
}

/// The cgroup path of this process for a controller (`""` for v2's unified hierarchy).
fn cgroup_path(controller: &str) -> Option<String> {
    let text = read("/proc/self/cgroup")?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

fn limit_less_usage(limit_file: &str, usage_file: &str) -> Option<u64> {
    let limit: u64 = read(limit_file)?.trim().parse().ok()?;
    let usage: u64 = read(usage_file)
        .and_then(|u| u.trim().parse().ok())
        .unwrap_or(0);
    Some(limit.saturating_sub(usage))
}

/// cgroup v2: memory.max (a number, or "max" for none) less memory.current.
fn cgroup_v2() -> Option<u64> {
    let dir = format!("/sys/fs/cgroup{}", cgroup_path("")?);
    limit_less_usage(
        &format!("{dir}/memory.max"),
        &format!("{dir}/memory.current"),
    )
}

/// cgroup v1: memory.limit_in_bytes less memory.usage_in_bytes.
fn cgroup_v1() -> Option<u64> {
    let dir = format!("/sys/fs/cgroup/memory{}", cgroup_path("memory")?);
    limit_less_usage(
        &format!("{dir}/memory.limit_in_bytes"),
        &format!("{dir}/memory.usage_in_bytes"),
    )
}

/// A declared shape as written: `[N, 3, 224, 224]`.
pub fn dims_text(dims: &[DimSpec]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            DimSpec::Known(v) => v.to_string(),
            DimSpec::Sym(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
