//! The time a decision is made at, as a value that can be injected.
//!
//! Checks that compare a message's own time with "now" (SCEP signingTime, CMP
//! messageTime, nonce and challenge expiry) read it from a [`Clock`], so that tests of
//! recorded messages can run at the time the messages were made, whatever day the
//! suite runs on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// A clock handle as the servers hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock: what every server uses outside tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still at a set time until moved: for tests of recorded messages
/// and of expiry.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    pub fn new(at: SystemTime) -> Self {
        Self { now: Arc::new(Mutex::new(at)) }
    }

    pub fn set(&self, at: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualClock::new(start);
        let shared = clock.shared();
        assert_eq!(shared.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(shared.now(), start + Duration::from_secs(90));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
