//! The source of nonces, IVs, DEKs, seeds and generated keys: a ChaCha20
//! generator per thread, seeded from the operating system.
//!
//! One `getrandom` system call per value cost more than the encryption of a
//! 1 KiB value (about 250 ns here, against 180 ns for a whole AES-256-GCM
//! seal with an accelerated backend). Instead each thread keeps a ChaCha20
//! keystream generator (`chacha20`'s `ChaCha20Rng`, the RustCrypto crate the
//! cipher comes from), and:
//!
//! - seeds it with 32 bytes from the operating system (`getrandom`) on first
//!   use, and again after every [`RESEED_AFTER`] bytes of output, so a
//!   snapshot of one state predicts at most that much;
//! - reseeds it from the operating system in a child process before the
//!   first value after a `fork`: a `pthread_atfork` child handler (in the
//!   `forkguard` crate, which keeps `unsafe` out of this one) bumps a global
//!   counter that each draw compares with the one it was seeded under. That
//!   check is one relaxed load of a value no one writes, so it neither costs a
//!   system call (`getpid` costs about 120 ns on this kind of machine) nor
//!   makes threads contend. Should the handler fail to register, the process
//!   ID is compared instead;
//! - is zeroized when its thread exits;
//! - allocates nothing: the state lives in the thread-local slot.
//!
//! A generator state is never shared by two threads, and a `fork`ed child
//! never continues its parent's stream, so two writers never draw the same
//! nonce from a common state. Forks that bypass `pthread_atfork` (a raw
//! `clone` system call, or `vfork` followed by anything but `exec`) are not
//! detected; neither Rust's standard library nor any common runtime forks that
//! way.
//!
//! Requests larger than [`DIRECT_ABOVE`] bytes go straight to the operating
//! system, and so does key material of any size ([`fill_key`]: generated
//! keys, KMS DEKs and seeds): the generator serves nonces, IVs and other
//! values that are public once written.

use std::cell::RefCell;

use chacha20::rand_core::{Rng as _, SeedableRng as _};
use chacha20::ChaCha20Rng;

use crate::Error;

/// Output after which a thread's generator is reseeded from the OS.
pub(crate) const RESEED_AFTER: usize = 64 * 1024;

/// Requests above this many bytes are served by the OS directly.
pub(crate) const DIRECT_ABOVE: usize = 256;

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Fills `buf` with cryptographically secure random bytes.
///
/// # Errors
///
/// [`Error::Random`] when the operating system's generator fails (the only
/// source of entropy; nothing is returned without it).
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), Error> {
    fill_seeding_from(buf, os_fill)
}

/// [`fill`], with the generator seeded (when it must be) from `os`.
fn fill_seeding_from(buf: &mut [u8], os: fn(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
    if buf.len() > DIRECT_ABOVE {
        return os(buf);
    }
    // The slot is gone only while the thread's locals are being destroyed;
    // a draw from another local's destructor then asks the OS.
    GENERATOR
        .try_with(|slot| {
            let mut slot = slot.try_borrow_mut().map_err(|_| Error::Random)?;
            if !slot.as_mut().is_some_and(|g| g.usable_for(buf.len())) {
                // Dropped (and zeroized) before the reseed: should the
                // reseed fail, the next draw tries again rather than go on
                // with a state a fork copied (the fork check reports a fork
                // only once).
                *slot = None;
                *slot = Some(Generator::seeded_from(os)?);
            }
            let Some(generator) = slot.as_mut() else {
                return Err(Error::Random);
            };
            generator.draw(buf);
            Ok(())
        })
        .unwrap_or_else(|_| os(buf))
}

/// Fills `buf` with key material (a generated key, a DEK, a seed) straight
/// from the operating system: no state of this process's generators ever
/// held it, so no snapshot of one (a core dump, a fork) predicts a key.
///
/// # Errors
///
/// [`Error::Random`] when the operating system's generator fails.
pub(crate) fn fill_key(buf: &mut [u8]) -> Result<(), Error> {
    os_fill(buf)
}

fn os_fill(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// One thread's generator.
struct Generator {
    /// Zeroized on drop (the `zeroize` feature of `chacha20`).
    rng: ChaCha20Rng,
    /// Bytes left before the next reseed.
    budget: usize,
    fork: ForkCheck,
}

impl Generator {
    fn seeded_from(os: fn(&mut [u8]) -> Result<(), Error>) -> Result<Self, Error> {
        // Registered first, so a fork between here and the seed is noticed.
        let fork = ForkCheck::new();
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        os(&mut seed[..])?;
        Ok(Self {
            rng: ChaCha20Rng::from_seed(*seed),
            budget: RESEED_AFTER,
            fork,
        })
    }

    /// Whether `len` more bytes may come from this state.
    fn usable_for(&mut self, len: usize) -> bool {
        len <= self.budget && !self.fork.forked()
    }

    fn draw(&mut self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
        self.budget -= buf.len();
    }
}

/// Tells whether the process forked since the check was made (a generator
/// seeded, a DEK's counter started).
#[cfg(unix)]
#[derive(Clone)]
pub(crate) enum ForkCheck {
    /// A `pthread_atfork` child handler counts forks.
    Atfork(forkguard::atfork::Guard),
    /// The handler could not be registered: compare process IDs.
    Pid(forkguard::pid::Guard),
}

#[cfg(unix)]
impl ForkCheck {
    pub(crate) fn new() -> Self {
        match forkguard::atfork::Guard::try_new() {
            Ok(guard) => Self::Atfork(guard),
            Err(_) => Self::Pid(forkguard::pid::Guard::default()),
        }
    }

    /// Whether a fork happened since the check was made, or since this was
    /// last called (the check then starts over).
    fn forked(&mut self) -> bool {
        match self {
            Self::Atfork(guard) => guard.detected_fork(),
            Self::Pid(guard) => guard.detected_fork(),
        }
    }

    /// Whether a fork happened since the check was made; it stays true in
    /// the child for good.
    pub(crate) fn forked_since_made(&self) -> bool {
        self.clone().forked()
    }
}

/// No `fork` on this platform.
#[cfg(not(unix))]
#[derive(Clone)]
pub(crate) struct ForkCheck;

#[cfg(not(unix))]
impl ForkCheck {
    pub(crate) fn new() -> Self {
        Self
    }

    fn forked(&mut self) -> bool {
        false
    }

    pub(crate) fn forked_since_made(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_cover_every_size() {
        // Short draws collide by chance (two 1-byte draws match one time in
        // 256), so each size draws until two values differ; 64 equal draws of
        // even one byte happen with probability 2^-504.
        for len in [1, 12, 16, 24, 32, 44, 256, 257, 1024] {
            let mut first = vec![0u8; len];
            fill(&mut first).expect("fill");
            let differs = (0..64).any(|_| {
                let mut next = vec![0u8; len];
                fill(&mut next).expect("fill");
                next != first
            });
            assert!(differs, "64 draws of {len} bytes were all equal");
        }
    }

    #[test]
    fn reseeds_after_the_budget() {
        // Drawing more than the budget goes through at least one reseed.
        let mut buf = [0u8; DIRECT_ABOVE];
        for _ in 0..(2 * RESEED_AFTER / DIRECT_ABOVE + 1) {
            fill(&mut buf).expect("fill");
        }
        GENERATOR.with_borrow(|g| {
            let budget = g.as_ref().map(|g| g.budget).expect("seeded");
            assert!(budget < RESEED_AFTER);
        });
    }

    #[test]
    fn a_failed_reseed_leaves_no_state_to_draw_from() {
        fn failing(_: &mut [u8]) -> Result<(), Error> {
            Err(Error::Random)
        }
        std::thread::spawn(|| {
            let mut buf = [0u8; 16];
            fill(&mut buf).expect("seeded");
            // Spend the budget: the next draw must reseed (as after a fork).
            GENERATOR.with_borrow_mut(|g| g.as_mut().expect("seeded").budget = 0);
            assert!(fill_seeding_from(&mut buf, failing).is_err());
            GENERATOR.with_borrow(|g| assert!(g.is_none(), "the old state was kept"));
            // And the next draw reseeds instead of going on with it.
            assert!(fill_seeding_from(&mut buf, failing).is_err());
            fill(&mut buf).expect("reseeded");
        })
        .join()
        .expect("thread");
    }

    /// Keys come from the OS: generating one draws nothing from the
    /// thread's generator.
    #[test]
    fn keys_do_not_come_from_the_thread_generator() {
        std::thread::spawn(|| {
            let mut nonce = [0u8; 12];
            fill(&mut nonce).expect("seeded");
            let budget = || GENERATOR.with_borrow(|g| g.as_ref().map(|g| g.budget));
            let before = budget();
            crate::SecretKey::generate(32).expect("key");
            let mut dek = [0u8; 32];
            fill_key(&mut dek).expect("dek");
            assert_eq!(
                budget(),
                before,
                "key material was drawn from the thread's stream"
            );
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn threads_have_their_own_streams() {
        let draw = || {
            let mut buf = [0u8; 32];
            fill(&mut buf).expect("fill");
            buf
        };
        let a = std::thread::spawn(draw).join().expect("thread");
        let b = std::thread::spawn(draw).join().expect("thread");
        assert_ne!(a, b);
    }
}
