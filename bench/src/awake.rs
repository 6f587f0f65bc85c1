//! Keeps every core awake with `SCHED_IDLE` spinner threads.
//!
//! On a virtual machine an idle vCPU is halted, and waking it costs tens of
//! microseconds, more than a gateway adds to one request: one client's
//! latency then measures the hypervisor, and varies run to run. A spinner at
//! `SCHED_IDLE` priority only runs when nothing else wants the core, so it
//! takes (almost) no time from the processes under test while keeping the
//! core from halting. Its CPU shows as this process's own, not as others'.

/// Starts one spinner per core (0..cores), for the life of the process.
pub fn spin(cores: usize) {
    for core in 0..cores {
        std::thread::spawn(move || {
            // SAFETY: a zeroed cpu_set_t and sched_param are valid; both calls
            // apply to the calling thread only (pid 0).
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(core, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                let param: libc::sched_param = std::mem::zeroed();
                if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
                    return; // Without SCHED_IDLE a spinner would steal time: do without.
                }
            }
            loop {
                std::hint::spin_loop();
            }
        });
    }
}
