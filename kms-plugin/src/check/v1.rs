//! The KMS v1 checks.

use futures_util::future::join_all;

use super::calls::{Calls, NoAnswer, CONCURRENT_ROUND_TRIPS};
use super::probe::{fresh_secret, DEK_LEN, LARGE_LEN};
use super::{clear, socket, CheckResult};
use k8s_envelope::kms::clip_message;
use k8s_envelope::kms::{GrpcClient, KmsEndpoint, KmsServiceV1};

/// The longest KMS v1 ciphertext: the apiserver stores its length in two
/// bytes.
const MAX_V1_CIPHERTEXT: usize = 65535;

pub(super) async fn run(
    client: &GrpcClient,
    endpoint: &KmsEndpoint,
    allow_insecure: bool,
) -> Vec<CheckResult> {
    let calls = Calls::new(client.timeout());
    let plugin = client.as_v1();
    let mut out = Vec::new();

    version(&calls, plugin, &mut out).await;
    let dek = fresh_secret(DEK_LEN);
    let ciphertext = match &dek {
        Ok(dek) => encrypt(&calls, plugin, dek, allow_insecure, &mut out).await,
        Err(no) => {
            out.push(no.result("encrypt.answers", true));
            None
        }
    };
    out.push(match (&ciphertext, &dek) {
        (Some(ciphertext), Ok(dek)) => round_trip(&calls, plugin, dek, ciphertext).await,
        _ => CheckResult::skipped("decrypt.round_trip", true, "Encrypt gave no ciphertext"),
    });
    out.push(concurrency(&calls, plugin).await);
    out.push(large_round_trip(&calls, plugin).await);
    out.push(match &ciphertext {
        Some(ciphertext) => corrupted_ciphertext(&calls, plugin, ciphertext).await,
        None => CheckResult::skipped("corrupted_ciphertext", false, "Encrypt gave no ciphertext"),
    });
    out.push(socket::permissions(endpoint));
    out.push(calls.latency());
    out
}

/// `version.answers` and `version.api`.
async fn version(calls: &Calls, plugin: &dyn KmsServiceV1, out: &mut Vec<CheckResult>) {
    match calls.call("Version", plugin.version()).await {
        Ok(version) => {
            out.push(CheckResult::required(
                "version.answers",
                Ok(format!(
                    "Version answered: runtime {:?} {:?}",
                    clip_message(&version.runtime_name),
                    clip_message(&version.runtime_version)
                )),
            ));
            out.push(CheckResult::required(
                "version.api",
                if version.version == "v1beta1" {
                    Ok("version \"v1beta1\"".into())
                } else {
                    Err(format!(
                        "version {:?}; the apiserver accepts only \"v1beta1\"",
                        clip_message(&version.version)
                    ))
                },
            ));
        }
        Err(no) => {
            out.push(no.result("version.answers", true));
            out.push(CheckResult::skipped(
                "version.api",
                true,
                "Version gave no answer",
            ));
        }
    }
}

/// `encrypt.answers`, `encrypt.ciphertext` and `encrypt.dek_concealed`;
/// the ciphertext when there is one.
async fn encrypt(
    calls: &Calls,
    plugin: &dyn KmsServiceV1,
    dek: &[u8],
    allow_insecure: bool,
    out: &mut Vec<CheckResult>,
) -> Option<Vec<u8>> {
    let ciphertext = match calls.call("Encrypt", plugin.encrypt(dek)).await {
        Ok(ciphertext) => ciphertext,
        Err(no) => {
            out.push(no.result("encrypt.answers", true));
            for id in ["encrypt.ciphertext", clear::ID] {
                out.push(CheckResult::skipped(id, true, "Encrypt gave no answer"));
            }
            return None;
        }
    };
    out.push(CheckResult::required(
        "encrypt.answers",
        Ok(format!("Encrypt of a {DEK_LEN}-byte DEK answered")),
    ));
    let len = ciphertext.len();
    out.push(CheckResult::required(
        "encrypt.ciphertext",
        if len == 0 {
            Err("the ciphertext is empty".into())
        } else if len > MAX_V1_CIPHERTEXT {
            Err(format!(
                "{len} bytes; the apiserver stores at most {MAX_V1_CIPHERTEXT}"
            ))
        } else {
            Ok(format!("{len} bytes"))
        },
    ));
    out.push(clear::check(dek, &ciphertext, allow_insecure));
    Some(ciphertext)
}

async fn round_trip(
    calls: &Calls,
    plugin: &dyn KmsServiceV1,
    dek: &[u8],
    ciphertext: &[u8],
) -> CheckResult {
    let id = "decrypt.round_trip";
    match calls.call("Decrypt", plugin.decrypt(ciphertext)).await {
        Ok(plain) if plain.as_slice() == dek => {
            CheckResult::required(id, Ok("Decrypt gave the DEK back".into()))
        }
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

async fn concurrency(calls: &Calls, plugin: &dyn KmsServiceV1) -> CheckResult {
    let trips = (0..CONCURRENT_ROUND_TRIPS).map(|_| async {
        let dek = fresh_secret(DEK_LEN)?;
        let ciphertext = calls.call("Encrypt", plugin.encrypt(&dek)).await?;
        let plain = calls.call("Decrypt", plugin.decrypt(&ciphertext)).await?;
        if plain.as_slice() != dek.as_slice() {
            return Err(NoAnswer::Failed(
                "a Decrypt answered bytes that are not its DEK".into(),
            ));
        }
        Ok(())
    });
    super::probe::concurrency_result(join_all(trips).await)
}

async fn large_round_trip(calls: &Calls, plugin: &dyn KmsServiceV1) -> CheckResult {
    let trip = async {
        let large = fresh_secret(LARGE_LEN)?;
        let ciphertext = calls.call_aside("Encrypt", plugin.encrypt(&large)).await?;
        let plain = calls
            .call_aside("Decrypt", plugin.decrypt(&ciphertext))
            .await?;
        Ok::<_, NoAnswer>(plain.as_slice() == large.as_slice())
    };
    match trip.await {
        Ok(true) => CheckResult::advisory(
            "large_round_trip",
            Ok("1 MiB went through Encrypt and Decrypt".into()),
        ),
        Ok(false) => CheckResult::advisory(
            "large_round_trip",
            Err("Decrypt of a 1 MiB Encrypt answered other bytes".into()),
        ),
        Err(no) => super::probe::large_result(&no),
    }
}

async fn corrupted_ciphertext(
    calls: &Calls,
    plugin: &dyn KmsServiceV1,
    ciphertext: &[u8],
) -> CheckResult {
    let corruptions = super::probe::corruptions(ciphertext);
    let tried = corruptions.len();
    let mut accepted = 0;
    for changed in corruptions {
        match calls.call("Decrypt", plugin.decrypt(&changed)).await {
            Ok(_) => accepted += 1,
            Err(NoAnswer::Skipped(why)) => {
                return CheckResult::skipped("corrupted_ciphertext", false, &why)
            }
            Err(NoAnswer::Failed(_)) => {}
        }
    }
    super::probe::corrupted_result(accepted, tried)
}
