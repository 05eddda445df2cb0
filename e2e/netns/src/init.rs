//! PID 1 of the node's PID namespace: reaps every child, forever.

use std::thread::sleep;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{WaitOptions, wait};

pub fn run() -> anyhow::Result<()> {
    loop {
        match wait(WaitOptions::empty()) {
            Ok(_) | Err(Errno::INTR) => {}
            // No child at the moment: processes entered with nsenter are children of
            // nsenter, not of this init; orphans arrive later.
            Err(Errno::CHILD) => sleep(Duration::from_millis(500)),
            Err(e) => {
                eprintln!("e2e-netns init: wait: {e}");
                sleep(Duration::from_secs(1));
            }
        }
    }
}
