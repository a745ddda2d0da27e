//! One stored value, decrypted and decoded, for `get` and `export`: how it
//! was read (which provider and key wrote it, whether it is stale) and what
//! it is (an object, CBOR, or bytes).

use k8s_envelope::object::{self, DecodeOptions, Decoded};
use k8s_envelope::store::{printable, Entry};
use k8s_envelope::store::{KeyLayout, KeyResource};
use k8s_envelope::walk::ValueOrigin;
use k8s_envelope::ResourceTransformers;
use zeroize::Zeroizing;

/// A value as `get` and `export` show it.
pub struct Shown {
    /// Who wrote it (from its prefix).
    pub origin: ValueOrigin,
    /// Whether the write provider would write it differently.
    pub stale: bool,
    /// The decrypted bytes.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// What they are.
    pub decoded: Decoded,
}

impl Shown {
    /// How it was read, for stderr: `aescbc:key1, current, revision 12`.
    pub fn how(&self, revision: i64) -> String {
        format!(
            "{}, {}, revision {revision}",
            self.origin,
            if self.stale { "stale" } else { "current" }
        )
    }
}

/// Decrypts `entry` with the transformer of its resource (told from its key
/// by `layout`) and decodes the plaintext.
pub async fn show(
    transformers: &ResourceTransformers,
    layout: &KeyLayout,
    entry: &Entry,
    options: &DecodeOptions,
) -> Result<Shown, String> {
    // The printable key is made only for an error: most values have none.
    let key = || printable(&entry.key);
    let resource = match layout.resource_of(&entry.key) {
        KeyResource::Resource(resource) => resource,
        _ => {
            return Err(format!(
                "{}: not an object key under the --etcd-prefix given (give --resource to read it anyway)",
                key()
            ))
        }
    };
    let storage_key = String::from_utf8_lossy(&entry.key);
    let decrypted = transformers
        .for_group_resource(&resource)
        .decrypt(&entry.value, storage_key.as_ref().into())
        .await
        .map_err(|e| format!("{}: {e}", key()))?;
    let plaintext = Zeroizing::new(decrypted.plaintext);
    let decoded = object::decode(&plaintext, options).map_err(|e| format!("{}: {e}", key()))?;
    Ok(Shown {
        origin: ValueOrigin::of(&entry.value),
        stale: decrypted.stale,
        plaintext,
        decoded,
    })
}
