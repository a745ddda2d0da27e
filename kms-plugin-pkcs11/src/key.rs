//! The AES keys on the token: found by label (the key that writes) or by
//! CKA_ID (any key a key ID names), checked to be sensitive and never
//! extractable, created when asked; and the key IDs that name them.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use k8s_envelope_kms_plugin::KekError;

use crate::failure::kek_error;

/// The start of every key ID: `pkcs11-` and the key's CKA_ID in hex.
pub const KEY_ID_PREFIX: &str = "pkcs11-";

/// The longest CKA_ID a key ID can carry (the apiserver takes key IDs of
/// at most 1 KiB).
const MAX_CKA_ID: usize = (1024 - KEY_ID_PREFIX.len()) / 2;

/// The CKA_ID of a key the plugin creates: random, 16 bytes.
const NEW_CKA_ID_LEN: usize = 16;

/// A key on the token the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// Its handle in this connection to the token.
    pub handle: ObjectHandle,
    /// Its key ID: `pkcs11-` and its CKA_ID in hex.
    pub key_id: String,
}

/// Which keys are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Accept a key whose value can leave the token or could once
    /// (CKA_EXTRACTABLE true, CKA_SENSITIVE false, CKA_ALWAYS_SENSITIVE
    /// false, CKA_NEVER_EXTRACTABLE false), or that is usable without the
    /// PIN (CKA_PRIVATE false).
    pub allow_extractable: bool,
}

/// The key ID of the key with `cka_id`.
pub fn key_id_of(cka_id: &[u8]) -> String {
    let mut out = String::with_capacity(KEY_ID_PREFIX.len() + 2 * cka_id.len());
    out.push_str(KEY_ID_PREFIX);
    for byte in cka_id {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The CKA_ID a key ID names, if it is one of this plugin's.
pub fn cka_id_of(key_id: &str) -> Option<Vec<u8>> {
    let hex = key_id.strip_prefix(KEY_ID_PREFIX)?;
    let valid = !hex.is_empty()
        && hex.len() % 2 == 0
        && hex.len() <= 2 * MAX_CKA_ID
        // Lower case only, as key_id_of writes it: one spelling per key, so
        // that the key ID a value carries compares equal to the current one.
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn aes_secret_keys() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
    ]
}

/// The AES key labelled `label`, if there is one.
///
/// # Errors
///
/// More than one key has the label; the key is not acceptable (see
/// [`checked`]); or the token failed.
pub fn find_by_label(
    session: &Session,
    label: &str,
    policy: KeyPolicy,
) -> Result<Option<TokenKey>, KekError> {
    let mut template = aes_secret_keys();
    template.push(Attribute::Label(label.as_bytes().to_vec()));
    let found = session
        .find_objects(&template)
        .map_err(|e| kek_error("finding the key", &e))?;
    match found.as_slice() {
        [] => Ok(None),
        [handle] => checked(session, *handle, policy)
            .map(Some)
            .map_err(|why| refused(&format!("the key labelled {label:?}"), &why)),
        many => Err(KekError::failed_precondition(format!(
            "{} AES keys are labelled {label:?} on the token; a label must name one key",
            many.len()
        ))),
    }
}

/// The AES key with `cka_id`, if there is one.
///
/// # Errors
///
/// As for [`find_by_label`].
pub fn find_by_cka_id(
    session: &Session,
    cka_id: &[u8],
    policy: KeyPolicy,
) -> Result<Option<TokenKey>, KekError> {
    let mut template = aes_secret_keys();
    template.push(Attribute::Id(cka_id.to_vec()));
    let found = session
        .find_objects(&template)
        .map_err(|e| kek_error("finding the key", &e))?;
    let key_id = key_id_of(cka_id);
    match found.as_slice() {
        [] => Ok(None),
        [handle] => checked(session, *handle, policy)
            .map(Some)
            .map_err(|why| refused(&format!("the key of key ID {key_id}"), &why)),
        many => Err(KekError::failed_precondition(format!(
            "{} AES keys have the CKA_ID of key ID {key_id}; it must name one key",
            many.len()
        ))),
    }
}

/// Why a key was refused, or the token's error.
pub enum Refusal {
    /// The key's attributes.
    Attributes(String),
    /// The token failed.
    Token(KekError),
}

fn refused(which: &str, why: &Refusal) -> KekError {
    match why {
        Refusal::Attributes(what) => {
            KekError::failed_precondition(format!("{which} is refused: {what}"))
        }
        Refusal::Token(e) => e.clone(),
    }
}

/// The key at `handle`, if [`KeyAttributes::key_id`] accepts it. Its value
/// is never read.
pub fn checked(
    session: &Session,
    handle: ObjectHandle,
    policy: KeyPolicy,
) -> Result<TokenKey, Refusal> {
    let attributes = session
        .get_attributes(handle, &KeyAttributes::WANTED)
        .map_err(|e| Refusal::Token(kek_error("reading the key's attributes", &e)))?;
    let key_id = KeyAttributes::from(attributes)
        .key_id(policy)
        .map_err(|what| Refusal::Attributes(what.to_owned()))?;
    Ok(TokenKey { handle, key_id })
}

/// What the plugin asks of a key, as the token reports it (`None`: not
/// reported).
#[derive(Debug, Default, Clone)]
struct KeyAttributes {
    id: Option<Vec<u8>>,
    len: Option<u64>,
    encrypt: bool,
    decrypt: bool,
    sensitive: Option<bool>,
    always_sensitive: Option<bool>,
    extractable: Option<bool>,
    never_extractable: Option<bool>,
    private: Option<bool>,
}

impl KeyAttributes {
    const WANTED: [AttributeType; 9] = [
        AttributeType::Id,
        AttributeType::ValueLen,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Sensitive,
        AttributeType::AlwaysSensitive,
        AttributeType::Extractable,
        AttributeType::NeverExtractable,
        AttributeType::Private,
    ];

    /// The key ID of an AES-256 key (32 bytes) allowed to encrypt and
    /// decrypt, with a CKA_ID of 1 to 508 bytes, that (unless `policy`
    /// allows otherwise) is private, sensitive and never was extractable;
    /// or why not.
    fn key_id(&self, policy: KeyPolicy) -> Result<String, &'static str> {
        if self.len != Some(32) {
            return Err("it is not an AES-256 key (CKA_VALUE_LEN is not 32)");
        }
        if !(self.encrypt && self.decrypt) {
            return Err("it must allow CKA_ENCRYPT and CKA_DECRYPT");
        }
        // A key that is sensitive now but was not always (or extractable
        // once) may have been copied out before: the token's own record
        // says so.
        let leaves = self.sensitive != Some(true) || self.extractable != Some(false);
        let left = self.always_sensitive != Some(true) || self.never_extractable != Some(true);
        if (leaves || left) && !policy.allow_extractable {
            return Err(
                "its value can leave the token, or could once (CKA_SENSITIVE false, \
                 CKA_EXTRACTABLE true, CKA_ALWAYS_SENSITIVE false or CKA_NEVER_EXTRACTABLE \
                 false); create a sensitive, never extractable key (--create-key does), or \
                 pass --allow-extractable-key to use it anyway",
            );
        }
        // A public object is usable by any session, logged in or not.
        if self.private != Some(true) && !policy.allow_extractable {
            return Err(
                "it is not a private object (CKA_PRIVATE false): anyone with access to the \
                 token can use it without the PIN; create a private key (--create-key does), \
                 or pass --allow-extractable-key to use it anyway",
            );
        }
        match &self.id {
            Some(id) if !id.is_empty() && id.len() <= MAX_CKA_ID => Ok(key_id_of(id)),
            Some(id) if id.len() > MAX_CKA_ID => Err("its CKA_ID is longer than 508 bytes"),
            _ => Err("it has no CKA_ID, which its key ID is made of (pkcs11-tool --id sets one)"),
        }
    }
}

impl From<Vec<Attribute>> for KeyAttributes {
    fn from(attributes: Vec<Attribute>) -> Self {
        let mut out = Self::default();
        for attribute in attributes {
            match attribute {
                Attribute::Id(value) => out.id = Some(value),
                Attribute::ValueLen(value) => out.len = Some(u64::from(value)),
                Attribute::Encrypt(value) => out.encrypt = value,
                Attribute::Decrypt(value) => out.decrypt = value,
                Attribute::Sensitive(value) => out.sensitive = Some(value),
                Attribute::AlwaysSensitive(value) => out.always_sensitive = Some(value),
                Attribute::Extractable(value) => out.extractable = Some(value),
                Attribute::NeverExtractable(value) => out.never_extractable = Some(value),
                Attribute::Private(value) => out.private = Some(value),
                _ => {}
            }
        }
        out
    }
}

/// Creates an AES-256 key labelled `label` inside the token: a token object,
/// private, sensitive, never extractable, not copyable, for encryption and
/// decryption only, with a random 16-byte CKA_ID.
///
/// # Errors
///
/// The token refused (its error, named).
pub fn create(session: &Session, label: &str) -> Result<TokenKey, KekError> {
    let mut cka_id = vec![0u8; NEW_CKA_ID_LEN];
    getrandom::fill(&mut cka_id)
        .map_err(|_| KekError::internal("no random bytes for the key's CKA_ID"))?;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Copyable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(cka_id.clone()),
    ];
    let handle = session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| kek_error("creating the key", &e))?;
    Ok(TokenKey {
        handle,
        key_id: key_id_of(&cka_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_carry_the_cka_id_in_hex() {
        assert_eq!(key_id_of(&[0x01]), "pkcs11-01");
        assert_eq!(cka_id_of("pkcs11-01ab"), Some(vec![0x01, 0xab]));
        for foreign in [
            "",
            "pkcs11-",
            "pkcs11-1",
            "pkcs11-zz",
            "local-01",
            "pkcs11-+1",
            "pkcs11-01AB",
        ] {
            assert_eq!(cka_id_of(foreign), None, "{foreign}");
        }
        let longest = key_id_of(&[7; MAX_CKA_ID]);
        assert!(longest.len() <= 1024);
        assert_eq!(cka_id_of(&longest).map(|id| id.len()), Some(MAX_CKA_ID));
        assert_eq!(cka_id_of(&format!("{longest}07")), None);
    }

    /// A key as --create-key makes it.
    fn sound() -> KeyAttributes {
        KeyAttributes::from(vec![
            Attribute::Id(vec![0xab, 0x01]),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sensitive(true),
            Attribute::AlwaysSensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true),
            Attribute::Private(true),
        ])
    }

    /// What a test case changes in a [`sound`] key, and its name.
    type Change = (&'static str, fn(&mut KeyAttributes));

    const STRICT: KeyPolicy = KeyPolicy {
        allow_extractable: false,
    };
    const LOOSE: KeyPolicy = KeyPolicy {
        allow_extractable: true,
    };

    #[test]
    fn a_sound_key_is_used_by_its_cka_id() {
        assert_eq!(sound().key_id(STRICT).as_deref(), Ok("pkcs11-ab01"));
    }

    #[test]
    fn a_key_that_can_or_could_leave_the_token_or_is_public_needs_the_flag() {
        let weakened: [Change; 6] = [
            ("not sensitive", |k| k.sensitive = Some(false)),
            ("once not sensitive", |k| k.always_sensitive = Some(false)),
            ("extractable", |k| k.extractable = Some(true)),
            ("once extractable", |k| k.never_extractable = Some(false)),
            ("public", |k| k.private = Some(false)),
            ("sensitivity not reported", |k| k.sensitive = None),
        ];
        for (what, weaken) in weakened {
            let mut key = sound();
            weaken(&mut key);
            let refused = key.key_id(STRICT).expect_err(what);
            assert!(
                refused.contains("--allow-extractable-key"),
                "{what}: {refused}"
            );
            assert_eq!(key.key_id(LOOSE).as_deref(), Ok("pkcs11-ab01"), "{what}");
        }
    }

    #[test]
    fn a_key_that_is_not_an_aes_256_encryption_key_with_a_cka_id_is_refused() {
        let wrong: [Change; 5] = [
            ("AES-128", |k| k.len = Some(16)),
            ("no decryption", |k| k.decrypt = false),
            ("no CKA_ID", |k| k.id = None),
            ("an empty CKA_ID", |k| k.id = Some(Vec::new())),
            ("a long CKA_ID", |k| k.id = Some(vec![1; MAX_CKA_ID + 1])),
        ];
        for (what, spoil) in wrong {
            let mut key = sound();
            spoil(&mut key);
            assert!(key.key_id(LOOSE).is_err(), "{what}");
        }
    }
}
