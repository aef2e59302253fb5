//! glibc gives each thread that meets contention in `malloc` an arena of its own, up to eight
//! per core, and hands little of an arena's freed memory back to the system. Under load the
//! API's runtime and blocking threads grew an arena each: about 20 MiB more resident memory
//! that bought no throughput (`bench/README.md`, "Resident memory"). Two arenas, one per
//! runtime thread on a two-core machine, keep the API under its 64 MiB bound at the same rate.
//! An operator's own `MALLOC_ARENA_MAX` is left to decide.

/// Caps glibc's arenas; must run before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: no other thread exists yet, and mallopt only changes the allocator's settings.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}
