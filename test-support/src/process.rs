//! Child processes the tests start: never left running.

use std::ops::{Deref, DerefMut};
use std::process::Child;

/// A child process, killed (SIGKILL) and reaped when dropped, so that a
/// failing test leaves no plugin or CLI behind.
pub struct Reaped(pub Child);

impl Deref for Reaped {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
