//! Where this instance is in its life: started, draining, refusing new
//! work. The start-up and the drain set the flags; the probes, the drain
//! gate and `parley_draining` read them.

use std::sync::atomic::{AtomicBool, Ordering};

/// Start-up and drain flags the probes report.
#[derive(Default)]
pub struct Lifecycle {
    started: AtomicBool,
    draining: AtomicBool,
    refusing: AtomicBool,
}

impl Lifecycle {
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn refuse_new_work(&self) {
        self.refusing.store(true, Ordering::SeqCst);
    }

    pub fn refusing_new_work(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }
}
