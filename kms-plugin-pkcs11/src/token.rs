//! The connection to the token: the module loaded once, the token found by
//! its label, the user logged in, a pool of sessions, the key handles; and
//! a fresh connection after the token went away.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use k8s_envelope_kms_plugin::{KekError, KekErrorKind};

use crate::failure::{describe, kek_error};
use crate::key::{self, KeyPolicy, TokenKey};

/// How often a lost token is looked for again, at most.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// What the plugin needs to find its token and key.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// CKA_LABEL of the token.
    pub token_label: String,
    /// CKA_LABEL of the key that wraps.
    pub key_label: String,
    /// Create the key when the token has none with its label (at start only).
    pub create_key: bool,
    /// Which keys are acceptable.
    pub policy: KeyPolicy,
}

/// Which key an operation uses.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// The key labelled `--key-label`.
    Write,
    /// The key whose CKA_ID is this.
    CkaId(&'a [u8]),
}

/// The token, connected or waiting to be connected again.
pub struct Token {
    config: TokenConfig,
    pin: AuthPin,
    pkcs11: Pkcs11,
    state: RwLock<State>,
    last_attempt: Mutex<Option<Instant>>,
    /// The key ID of the write key, as last seen. Apart from `state`, whose
    /// write lock a reconnection holds for as long as the module takes:
    /// Status reads this on the server's own threads.
    write_key_id: Mutex<String>,
}

struct State {
    /// `None` while the token is lost.
    connection: Option<Connection>,
    /// Why it was lost.
    lost: Option<KekError>,
    /// Set when connecting again failed on something only an operator can
    /// fix (a PIN changed on the token, the write key deleted): not tried
    /// again, since every wrong PIN counts towards locking the token's.
    refused: Option<KekError>,
    /// How many connections were opened before this state's.
    generation: u64,
}

/// One login to the token: everything here is valid until the token goes
/// away (then it is dropped whole, before the module is reset).
struct Connection {
    /// Which connection this is ([`State::generation`] when it opened).
    generation: u64,
    slot: Slot,
    write: TokenKey,
    /// Idle sessions. One stays open from the login on: closing the last
    /// session of an application logs it out.
    idle: Mutex<Vec<Session>>,
    /// Keys found by CKA_ID.
    keys: Mutex<HashMap<Vec<u8>, TokenKey>>,
}

impl Token {
    /// Loads the module, finds the token, logs in and finds (or, with
    /// `create_key`, creates) the write key.
    ///
    /// # Errors
    ///
    /// The module does not load, no token or two tokens have the label,
    /// the PIN is refused, the key is missing or refused.
    pub fn open(config: TokenConfig, pin: AuthPin) -> Result<Self, KekError> {
        let pkcs11 = Pkcs11::new(&config.module).map_err(|e| {
            KekError::failed_precondition(format!(
                "PKCS#11 module {}: {}",
                config.module.display(),
                describe(&e)
            ))
        })?;
        initialize(&pkcs11)?;
        let connection = Connection::open(&pkcs11, &config, &pin, config.create_key, 0)?;
        Ok(Self {
            write_key_id: Mutex::new(connection.write.key_id.clone()),
            state: RwLock::new(State {
                connection: Some(connection),
                lost: None,
                refused: None,
                generation: 0,
            }),
            config,
            pin,
            pkcs11,
            last_attempt: Mutex::new(None),
        })
    }

    /// The key ID of the write key (as last seen, also while the token is
    /// away: Status still names it, with healthz saying what is wrong).
    pub fn write_key_id(&self) -> String {
        lock(&self.write_key_id).clone()
    }

    /// Runs `operation` (named `what` in errors) on a pooled session with
    /// the key `which`. A failure that means the token is gone drops the
    /// connection; the next call connects again (at most once a second).
    ///
    /// # Errors
    ///
    /// The token is away or failed; the key is unknown or refused.
    pub fn with_key<T>(
        &self,
        which: Which<'_>,
        what: &str,
        operation: impl Fn(&Session, &TokenKey) -> Result<T, Error>,
    ) -> Result<T, KekError> {
        let state = self.connected()?;
        let Some(connection) = state.connection.as_ref() else {
            return Err(unavailable(&self.config.token_label, state.lost.as_ref()));
        };
        let outcome = connection.run(&self.pkcs11, which, self.config.policy, what, operation);
        let generation = connection.generation;
        drop(state);
        if let Err(e) = &outcome {
            if e.kind() == KekErrorKind::Unavailable {
                self.lose(generation, e.clone());
            }
        }
        outcome
    }

    /// Whether the token and the write key answer (for Status).
    ///
    /// # Errors
    ///
    /// What is wrong, as for [`with_key`](Self::with_key).
    pub fn check(&self) -> Result<(), KekError> {
        let same = self.with_key(Which::Write, "checking the key", |session, key| {
            let attributes =
                session.get_attributes(key.handle, &[cryptoki::object::AttributeType::Id])?;
            // A token may give the handle of a deleted key to a new object.
            Ok(attributes.iter().any(
                |a| matches!(a, cryptoki::object::Attribute::Id(id) if key::key_id_of(id) == key.key_id),
            ))
        })?;
        if same {
            return Ok(());
        }
        Err(KekError::failed_precondition(format!(
            "the key labelled {:?} is no longer on token {:?} (deleted?)",
            self.config.key_label, self.config.token_label
        )))
    }

    /// A read guard on a connected state, connecting again first if the
    /// token was lost.
    fn connected(&self) -> Result<RwLockReadGuard<'_, State>, KekError> {
        {
            let state = self.read();
            if state.connection.is_some() {
                return Ok(state);
            }
        }
        self.reconnect()?;
        Ok(self.read())
    }

    /// Drops connection `generation` after `why` (its sessions are closed
    /// now, before the module is reset, so that no stale session handle
    /// outlives it). A newer connection, opened since by another call, is
    /// kept.
    fn lose(&self, generation: u64, why: KekError) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.connection.as_ref().map(|c| c.generation) != Some(generation) {
            return;
        }
        if let Some(connection) = state.connection.take() {
            connection.close();
        }
        state.lost = Some(why);
    }

    /// Resets the module and connects again; at most once a second, and
    /// never again after a refusal only an operator can fix.
    fn reconnect(&self) -> Result<(), KekError> {
        {
            let state = self.read();
            if state.connection.is_some() {
                return Ok(());
            }
            if let Some(refused) = &state.refused {
                return Err(refused.clone());
            }
        }
        {
            let mut last = lock(&self.last_attempt);
            if last.is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL) {
                let state = self.read();
                return Err(unavailable(&self.config.token_label, state.lost.as_ref()));
            }
            *last = Some(Instant::now());
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.connection.is_some() {
            return Ok(());
        }
        // A token that went away is seen again only by a fresh C_Initialize
        // (SoftHSM2 reads its slots then; so do many HSM modules).
        let _ = self.pkcs11.clone().finalize();
        let generation = state.generation + 1;
        let opened = initialize(&self.pkcs11).and_then(|()| {
            Connection::open(&self.pkcs11, &self.config, &self.pin, false, generation)
        });
        match opened {
            Ok(connection) => {
                *lock(&self.write_key_id) = connection.write.key_id.clone();
                state.generation = generation;
                state.connection = Some(connection);
                state.lost = None;
                Ok(())
            }
            Err(e) if e.kind() == KekErrorKind::FailedPrecondition => {
                let refused = KekError::failed_precondition(format!(
                    "connecting to PKCS#11 token {:?} again failed: {}; not tried again \
                     (every wrong PIN counts towards locking it): fix it, then restart the plugin",
                    self.config.token_label,
                    e.message()
                ));
                state.refused = Some(refused.clone());
                Err(refused)
            }
            Err(e) => {
                let error = unavailable(&self.config.token_label, Some(&e));
                state.lost = Some(e);
                Err(error)
            }
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = state.connection.take() {
            connection.close();
        }
        let _ = self.pkcs11.clone().finalize();
    }
}

impl Connection {
    /// Finds the token, logs in, finds (or creates) the write key.
    fn open(
        pkcs11: &Pkcs11,
        config: &TokenConfig,
        pin: &AuthPin,
        create_key: bool,
        generation: u64,
    ) -> Result<Self, KekError> {
        let slot = find_slot(pkcs11, &config.token_label)?;
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(|e| kek_error("opening a session", &e))?;
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(kek_error("logging in", &e)),
        }
        let write = match key::find_by_label(&session, &config.key_label, config.policy)? {
            Some(found) => found,
            None if create_key => key::create(&session, &config.key_label)?,
            None => {
                return Err(KekError::failed_precondition(format!(
                    "token {:?} has no AES key labelled {:?}; start once with --create-key to \
                     create it",
                    config.token_label, config.key_label
                )))
            }
        };
        Ok(Self {
            generation,
            slot,
            write,
            idle: Mutex::new(vec![session]),
            keys: Mutex::new(HashMap::new()),
        })
    }

    fn run<T>(
        &self,
        pkcs11: &Pkcs11,
        which: Which<'_>,
        policy: KeyPolicy,
        what: &str,
        operation: impl Fn(&Session, &TokenKey) -> Result<T, Error>,
    ) -> Result<T, KekError> {
        // Popped first, so that the pool is not locked while a session opens.
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(session) => session,
            None => pkcs11
                .open_rw_session(self.slot)
                .map_err(|e| kek_error("opening a session", &e))?,
        };
        let mut outcome = self.once(pkcs11, &session, which, policy, what, &operation);
        if let (Which::CkaId(id), Err(e)) = (which, &outcome) {
            // A cached handle of a key deleted since (a retired key) is
            // invalid while the token is fine: look the key up once more.
            if e.kind() == KekErrorKind::Unavailable && lock(&self.keys).remove(id).is_some() {
                outcome = self.once(pkcs11, &session, which, policy, what, &operation);
            }
        }
        let lost = matches!(&outcome, Err(e) if e.kind() == KekErrorKind::Unavailable);
        if !lost {
            lock(&self.idle).push(session);
        }
        outcome
    }

    fn once<T>(
        &self,
        pkcs11: &Pkcs11,
        session: &Session,
        which: Which<'_>,
        policy: KeyPolicy,
        what: &str,
        operation: &impl Fn(&Session, &TokenKey) -> Result<T, Error>,
    ) -> Result<T, KekError> {
        let key = match which {
            Which::Write => self.write.clone(),
            Which::CkaId(id) => self.key_by_cka_id(pkcs11, session, id, policy)?,
        };
        operation(session, &key).map_err(|e| kek_error(what, &e))
    }

    /// The key with `cka_id`, from the cache or the token. A key ID the
    /// token has no key for is an invalid argument, unless the token itself
    /// is gone (SoftHSM2 then finds nothing rather than failing).
    fn key_by_cka_id(
        &self,
        pkcs11: &Pkcs11,
        session: &Session,
        cka_id: &[u8],
        policy: KeyPolicy,
    ) -> Result<TokenKey, KekError> {
        if let Some(key) = lock(&self.keys).get(cka_id) {
            return Ok(key.clone());
        }
        match key::find_by_cka_id(session, cka_id, policy)? {
            Some(key) => {
                lock(&self.keys).insert(cka_id.to_vec(), key.clone());
                Ok(key)
            }
            None => {
                // A token that cannot describe itself is gone, whatever
                // its module answers.
                pkcs11.get_token_info(self.slot).map_err(|e| {
                    KekError::unavailable(format!("reading the token: {}", describe(&e)))
                })?;
                Err(KekError::invalid_argument(format!(
                    "unknown key ID {}: the token has no AES key with its CKA_ID (retired?)",
                    key::key_id_of(cka_id)
                )))
            }
        }
    }

    /// Closes every idle session (errors ignored: the token may be gone).
    fn close(self) {
        let idle = self
            .idle
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for session in idle {
            let _ = session.close();
        }
    }
}

/// The error while the token is away, with what was last seen.
fn unavailable(label: &str, cause: Option<&KekError>) -> KekError {
    KekError::unavailable(format!(
        "PKCS#11 token {label:?} is unavailable ({}); reconnecting",
        cause.map_or("lost", KekError::message)
    ))
}

fn initialize(pkcs11: &Pkcs11) -> Result<(), KekError> {
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(KekError::unavailable(format!(
            "initializing the PKCS#11 module: {} (SoftHSM2 fails so when SOFTHSM2_CONF names \
             no readable configuration)",
            describe(&e)
        ))),
    }
}

/// The one slot whose token is labelled `label`.
fn find_slot(pkcs11: &Pkcs11, label: &str) -> Result<Slot, KekError> {
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(|e| kek_error("listing the slots", &e))?;
    // A slot whose token cannot describe itself is skipped (SoftHSM2 keeps
    // a slot for a token that went away).
    let labelled: Vec<(Slot, String)> = slots
        .into_iter()
        .filter_map(|slot| {
            let info = pkcs11.get_token_info(slot).ok()?;
            Some((slot, info.label().to_owned()))
        })
        .collect();
    let matching: Vec<Slot> = labelled
        .iter()
        .filter(|(_, l)| l == label)
        .map(|(slot, _)| *slot)
        .collect();
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(KekError::unavailable(no_such_token(label, &labelled))),
        many => Err(KekError::failed_precondition(format!(
            "{} tokens are labelled {label:?}; the label must name one",
            many.len()
        ))),
    }
}

/// No token has the label: which tokens the module shows, and where to
/// look (SoftHSM2 reads its token directory from `SOFTHSM2_CONF`).
fn no_such_token(label: &str, seen: &[(Slot, String)]) -> String {
    let mut shown: Vec<String> = seen
        .iter()
        .filter(|(_, l)| !l.is_empty())
        .map(|(_, l)| format!("{l:?}"))
        .collect();
    let unlabelled = seen.iter().filter(|(_, l)| l.is_empty()).count();
    if unlabelled > 0 {
        shown.push(format!(
            "{unlabelled} token(s) without a label (not initialized)"
        ));
    }
    let seen = if shown.is_empty() {
        "the module shows no token at all".to_owned()
    } else {
        format!("the module shows {}", shown.join(", "))
    };
    format!(
        "no token labelled {label:?} is present ({seen}); check the label, and for \
         SoftHSM2 that SOFTHSM2_CONF names the configuration whose tokendir holds the \
         token (softhsm2-util --show-slots lists what the module sees)"
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.config.module)
            .field("token_label", &self.config.token_label)
            .field("key_label", &self.config.key_label)
            .finish_non_exhaustive()
    }
}
