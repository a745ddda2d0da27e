//! The KMS v2 checks.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use zeroize::Zeroizing;

use super::calls::{Calls, NoAnswer, CONCURRENT_ROUND_TRIPS};
use super::probe::{fresh_secret, request_uid, shown_key_id, DEK_LEN, LARGE_LEN};
use super::{clear, socket, CheckResult};
use k8s_envelope::kms::rules::{
    validate_annotations, validate_encrypted_dek_source, validate_key_id,
};
use k8s_envelope::kms::{EncryptResponse, GrpcClient, KmsEndpoint, KmsServiceV2};

/// A key ID no plugin issues, for `foreign_key_id`.
const FOREIGN_KEY_ID: &str = "k8s-envelope-kms-check-foreign-key-id";

pub(super) async fn run(
    client: &GrpcClient,
    endpoint: &KmsEndpoint,
    allow_insecure: bool,
) -> Vec<CheckResult> {
    let calls = Calls::new(client.timeout());
    let plugin = client.as_v2();
    let mut out = Vec::new();

    let status_key_id = status(&calls, plugin, &mut out).await;
    let dek = fresh_secret(DEK_LEN);
    let encrypted = match &dek {
        Ok(dek) => {
            let status_key_id = status_key_id.as_deref();
            encrypt(&calls, plugin, dek, status_key_id, allow_insecure, &mut out).await
        }
        Err(no) => {
            out.push(no.result("encrypt.answers", true));
            None
        }
    };
    out.push(match (&encrypted, &dek) {
        (Some(encrypted), Ok(dek)) => round_trip(&calls, plugin, dek, encrypted).await,
        _ => CheckResult::skipped("decrypt.round_trip", true, "Encrypt gave no ciphertext"),
    });
    out.push(concurrency(&calls, plugin).await);
    out.push(key_id_stable(&calls, plugin, status_key_id.as_deref()).await);

    out.push(large_round_trip(&calls, plugin).await);
    match &encrypted {
        Some(encrypted) => {
            out.push(corrupted_ciphertext(&calls, plugin, encrypted).await);
            out.push(foreign_key_id(&calls, plugin, encrypted).await);
        }
        None => {
            for id in ["corrupted_ciphertext", "foreign_key_id"] {
                out.push(CheckResult::skipped(
                    id,
                    false,
                    "Encrypt gave no ciphertext",
                ));
            }
        }
    }
    out.push(socket::permissions(endpoint));
    out.push(calls.latency());
    out
}

/// `status.answers`, `.version`, `.healthz`, `.key_id`; the key ID when
/// there is one.
async fn status(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    out: &mut Vec<CheckResult>,
) -> Option<String> {
    let status = match calls.call("Status", plugin.status()).await {
        Ok(status) => status,
        Err(no) => {
            out.push(no.result("status.answers", true));
            for id in ["status.version", "status.healthz", "status.key_id"] {
                out.push(CheckResult::skipped(id, true, "Status gave no answer"));
            }
            return None;
        }
    };
    out.push(CheckResult::required(
        "status.answers",
        Ok("Status answered".into()),
    ));
    out.push(CheckResult::required(
        "status.version",
        match status.version.as_str() {
            "v2" | "v2beta1" => Ok(format!("version {:?}", status.version)),
            other => Err(format!(
                "version {:?}; the apiserver accepts only \"v2\" (or \"v2beta1\")",
                k8s_envelope::kms::clip_message(other)
            )),
        },
    ));
    out.push(CheckResult::required(
        "status.healthz",
        if status.is_healthy() {
            Ok("healthz \"ok\"".into())
        } else {
            Err(format!(
                "healthz {:?}; the apiserver reports the provider unhealthy unless it is \"ok\"",
                k8s_envelope::kms::clip_message(&status.healthz)
            ))
        },
    ));
    let valid = validate_key_id(&status.key_id);
    out.push(CheckResult::required(
        "status.key_id",
        match valid {
            Ok(()) => Ok(format!("key ID {}", shown_key_id(&status.key_id))),
            Err(reason) => Err(format!(
                "{reason} (key ID {})",
                shown_key_id(&status.key_id)
            )),
        },
    ));
    Some(status.key_id)
}

/// `encrypt.answers`, `.key_id`, `.ciphertext`, `.dek_concealed`,
/// `.annotations`; the answer when there is one.
async fn encrypt(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    dek: &[u8],
    status_key_id: Option<&str>,
    allow_insecure: bool,
    out: &mut Vec<CheckResult>,
) -> Option<EncryptResponse> {
    let uid = match request_uid() {
        Ok(uid) => uid,
        Err(no) => {
            out.push(no.result("encrypt.answers", true));
            return None;
        }
    };
    let encrypted = match calls.call("Encrypt", plugin.encrypt(&uid, dek)).await {
        Ok(encrypted) => encrypted,
        Err(no) => {
            out.push(no.result("encrypt.answers", true));
            for id in [
                "encrypt.key_id",
                "encrypt.ciphertext",
                clear::ID,
                "encrypt.annotations",
            ] {
                out.push(CheckResult::skipped(id, true, "Encrypt gave no answer"));
            }
            return None;
        }
    };
    out.push(CheckResult::required(
        "encrypt.answers",
        Ok(format!("Encrypt of a {DEK_LEN}-byte DEK answered")),
    ));
    let key_id = &encrypted.key_id;
    out.push(CheckResult::required(
        "encrypt.key_id",
        match (validate_key_id(key_id), status_key_id) {
            (Err(reason), _) => Err(format!("{reason} (key ID {})", shown_key_id(key_id))),
            (Ok(()), Some(status)) if status != key_id => Err(format!(
                "Encrypt answered key ID {} but Status reports {}; the apiserver takes Status's key ID as the one its writes use",
                shown_key_id(key_id),
                shown_key_id(status)
            )),
            (Ok(()), Some(_)) => Ok(format!("key ID {}, as Status reports", shown_key_id(key_id))),
            (Ok(()), None) => Ok(format!("key ID {} (no Status to compare)", shown_key_id(key_id))),
        },
    ));
    let len = encrypted.ciphertext.len();
    out.push(CheckResult::required(
        "encrypt.ciphertext",
        match validate_encrypted_dek_source(&encrypted.ciphertext) {
            Ok(()) => Ok(format!("{len} bytes")),
            Err(reason) => Err(format!("{reason} ({len} bytes)")),
        },
    ));
    out.push(clear::check(dek, &encrypted.ciphertext, allow_insecure));
    out.push(CheckResult::required(
        "encrypt.annotations",
        annotations(&encrypted.annotations),
    ));
    Some(encrypted)
}

fn annotations(annotations: &BTreeMap<String, Vec<u8>>) -> Result<String, String> {
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    let entries = annotations.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
    match validate_annotations(entries) {
        Ok(()) if annotations.is_empty() => Ok("none".into()),
        Ok(()) => Ok(format!(
            "{} annotation(s), {total} bytes",
            annotations.len()
        )),
        Err(reason) => {
            let bad = annotations
                .keys()
                .find(|k| !k8s_envelope::kms::rules::is_fully_qualified_domain_name(k));
            Err(match bad {
                Some(key) => format!("{reason}: {:?}", k8s_envelope::kms::clip_message(key)),
                None => format!("{reason} ({total} bytes)"),
            })
        }
    }
}

/// `decrypt.round_trip`: Decrypt, with another UID, gives the DEK back.
async fn round_trip(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    dek: &[u8],
    encrypted: &EncryptResponse,
) -> CheckResult {
    let id = "decrypt.round_trip";
    match decrypt(calls, plugin, encrypted, &encrypted.key_id).await {
        Ok(plain) if plain.as_slice() == dek => CheckResult::required(
            id,
            Ok("Decrypt, with a request UID other than Encrypt's, gave the DEK back".into()),
        ),
        Ok(plain) => CheckResult::required(
            id,
            Err(format!(
                "Decrypt answered {} bytes that are not the DEK Encrypt was given",
                plain.len()
            )),
        ),
        Err(no) => no.result(id, true),
    }
}

async fn decrypt(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    encrypted: &EncryptResponse,
    key_id: &str,
) -> Result<Zeroizing<Vec<u8>>, NoAnswer> {
    let uid = request_uid()?;
    calls
        .call(
            "Decrypt",
            plugin.decrypt(&uid, key_id, &encrypted.ciphertext, &encrypted.annotations),
        )
        .await
}

/// `concurrency`: 16 round trips at once.
async fn concurrency(calls: &Calls, plugin: &dyn KmsServiceV2) -> CheckResult {
    let trips = (0..CONCURRENT_ROUND_TRIPS).map(|_| async {
        let dek = fresh_secret(DEK_LEN)?;
        let uid = request_uid()?;
        let encrypted = calls.call("Encrypt", plugin.encrypt(&uid, &dek)).await?;
        let plain = decrypt(calls, plugin, &encrypted, &encrypted.key_id).await?;
        if plain.as_slice() != dek.as_slice() {
            return Err(NoAnswer::Failed(
                "a Decrypt answered bytes that are not its DEK".into(),
            ));
        }
        Ok(())
    });
    super::probe::concurrency_result(join_all(trips).await)
}

/// `status.key_id_stable`: a second Status, after everything above, reports
/// the key ID the first did.
async fn key_id_stable(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    first: Option<&str>,
) -> CheckResult {
    let id = "status.key_id_stable";
    let Some(first) = first else {
        return CheckResult::skipped(id, true, "the first Status gave no answer");
    };
    match calls.call("Status", plugin.status()).await {
        Ok(second) if second.key_id == first => CheckResult::required(
            id,
            Ok("the same key ID after the round trips".into()),
        ),
        Ok(second) => CheckResult::required(
            id,
            Err(format!(
                "the key ID changed from {} to {} within the check; the apiserver re-wraps its key on every change",
                shown_key_id(first),
                shown_key_id(&second.key_id)
            )),
        ),
        Err(no) => no.result(id, true),
    }
}

/// `large_round_trip` (advice): 1 MiB through Encrypt and Decrypt.
async fn large_round_trip(calls: &Calls, plugin: &dyn KmsServiceV2) -> CheckResult {
    let id = "large_round_trip";
    let trip = async {
        let large = fresh_secret(LARGE_LEN)?;
        let uid = request_uid()?;
        let encrypted = calls
            .call_aside("Encrypt", plugin.encrypt(&uid, &large))
            .await?;
        let uid = request_uid()?;
        let plain = calls
            .call_aside(
                "Decrypt",
                plugin.decrypt(
                    &uid,
                    &encrypted.key_id,
                    &encrypted.ciphertext,
                    &encrypted.annotations,
                ),
            )
            .await?;
        Ok::<_, NoAnswer>(plain.as_slice() == large.as_slice())
    };
    match trip.await {
        Ok(true) => CheckResult::advisory(id, Ok("1 MiB went through Encrypt and Decrypt".into())),
        Ok(false) => CheckResult::advisory(
            id,
            Err("Decrypt of a 1 MiB Encrypt answered other bytes".into()),
        ),
        Err(no) => super::probe::large_result(&no),
    }
}

/// `corrupted_ciphertext` (advice): Decrypt refuses a changed ciphertext.
async fn corrupted_ciphertext(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    encrypted: &EncryptResponse,
) -> CheckResult {
    let mut accepted = 0;
    let corruptions = super::probe::corruptions(&encrypted.ciphertext);
    let tried = corruptions.len();
    for ciphertext in corruptions {
        let changed = EncryptResponse {
            ciphertext,
            ..encrypted.clone()
        };
        match decrypt(calls, plugin, &changed, &changed.key_id).await {
            Ok(_) => accepted += 1,
            Err(NoAnswer::Skipped(why)) => {
                return CheckResult::skipped("corrupted_ciphertext", false, &why)
            }
            Err(NoAnswer::Failed(_)) => {}
        }
    }
    super::probe::corrupted_result(accepted, tried)
}

/// `foreign_key_id` (advice): Decrypt refuses a key ID it never issued.
async fn foreign_key_id(
    calls: &Calls,
    plugin: &dyn KmsServiceV2,
    encrypted: &EncryptResponse,
) -> CheckResult {
    let id = "foreign_key_id";
    match decrypt(calls, plugin, encrypted, FOREIGN_KEY_ID).await {
        Ok(_) => CheckResult::advisory(
            id,
            Err(format!(
                "Decrypt with the key ID {FOREIGN_KEY_ID:?}, which the plugin never issued, answered data: the key ID is not checked"
            )),
        ),
        Err(NoAnswer::Failed(_)) => CheckResult::advisory(
            id,
            Ok("Decrypt refuses a key ID the plugin never issued".into()),
        ),
        Err(no @ NoAnswer::Skipped(_)) => no.result(id, false),
    }
}
