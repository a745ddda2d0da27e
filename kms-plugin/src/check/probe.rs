//! What the checks send (random DEKs, request UIDs, corrupted copies of a
//! ciphertext) and how the checks both APIs share read their answers.

use zeroize::Zeroizing;

use super::calls::NoAnswer;
use super::CheckResult;
use k8s_envelope::kms::clip_message;

/// A DEK or seed, as the apiserver sends.
pub(super) const DEK_LEN: usize = 32;

/// The `large_round_trip` payload: 1 MiB.
pub(super) const LARGE_LEN: usize = 1024 * 1024;

/// `len` random bytes, wiped on drop.
pub(super) fn fresh_secret(len: usize) -> Result<Zeroizing<Vec<u8>>, NoAnswer> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|e| NoAnswer::Failed(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

/// A fresh request UID, as the apiserver sends one per call.
pub(super) fn request_uid() -> Result<String, NoAnswer> {
    k8s_envelope::kms::request_uid().map_err(|e| NoAnswer::Failed(format!("no random bytes: {e}")))
}

/// A key ID for a report: quoted, control characters replaced, and only its
/// start and length when long.
pub(super) fn shown_key_id(key_id: &str) -> String {
    const SHOWN: usize = 64;
    if key_id.len() <= SHOWN {
        return format!("{:?}", clip_message(key_id));
    }
    let mut end = SHOWN;
    while !key_id.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{:?}... ({} bytes)",
        clip_message(&key_id[..end]),
        key_id.len()
    )
}

/// Copies of `ciphertext` with one bit flipped at its start, middle and end
/// (low and second-lowest bit, so that a text encoding such as base64 still
/// decodes for some of them), with two different bytes in its middle
/// swapped (which keeps any text encoding's alphabet, so that a plugin
/// without authentication is always caught, whatever the random DEK), and
/// one byte shorter.
pub(super) fn corruptions(ciphertext: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if ciphertext.is_empty() {
        return out;
    }
    let last = ciphertext.len() - 1;
    for at in [0, last / 2, last] {
        for bit in [0x01, 0x02] {
            let mut changed = ciphertext.to_vec();
            if let Some(byte) = changed.get_mut(at) {
                *byte ^= bit;
            }
            if !out.contains(&changed) {
                out.push(changed);
            }
        }
    }
    if let Some(at) = (last / 2..last).find(|&i| ciphertext[i] != ciphertext[i + 1]) {
        let mut swapped = ciphertext.to_vec();
        swapped.swap(at, at + 1);
        out.push(swapped);
    }
    out.push(ciphertext[..last].to_vec());
    out
}

/// `corrupted_ciphertext` from how many of `tried` corruptions decrypted.
pub(super) fn corrupted_result(accepted: usize, tried: usize) -> CheckResult {
    let id = "corrupted_ciphertext";
    if accepted == 0 {
        CheckResult::advisory(
            id,
            Ok(format!("Decrypt refused all {tried} corrupted copies")),
        )
    } else {
        CheckResult::advisory(
            id,
            Err(format!(
                "Decrypt answered data for {accepted} of {tried} corrupted copies of a ciphertext: it is not authenticated"
            )),
        )
    }
}

/// `concurrency` from the outcome of each round trip.
pub(super) fn concurrency_result(trips: Vec<Result<(), NoAnswer>>) -> CheckResult {
    let id = "concurrency";
    let total = trips.len();
    let (mut failed, mut first_failure, mut first_skip) = (0, None, None);
    for trip in trips {
        match trip {
            Ok(()) => {}
            Err(NoAnswer::Failed(why)) => {
                failed += 1;
                first_failure.get_or_insert(why);
            }
            Err(NoAnswer::Skipped(why)) => {
                failed += 1;
                first_skip.get_or_insert(why);
            }
        }
    }
    match (first_failure, first_skip) {
        _ if failed == 0 => {
            CheckResult::required(id, Ok(format!("{total} round trips at once all succeeded")))
        }
        (None, Some(why)) if failed == total => CheckResult::skipped(id, true, &why),
        (first, skip) => CheckResult::required(
            id,
            Err(format!(
                "{failed} of {total} round trips at once failed; the first: {}",
                first.or(skip).unwrap_or_default()
            )),
        ),
    }
}

/// `large_round_trip` when a call gave no answer.
pub(super) fn large_result(no: &NoAnswer) -> CheckResult {
    match no {
        NoAnswer::Failed(why) => CheckResult::advisory(
            "large_round_trip",
            Err(format!(
                "a 1 MiB round trip failed ({why}); the apiserver sends only 32-byte keys, but other clients may not"
            )),
        ),
        NoAnswer::Skipped(_) => no.result("large_round_trip", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruptions_differ_from_the_original() {
        let original = b"abcdefgh".to_vec();
        let changed = corruptions(&original);
        assert_eq!(changed.len(), 8);
        assert!(changed.iter().all(|c| *c != original));
        assert!(changed.contains(&b"abcedfgh".to_vec()), "{changed:?}");
        assert!(corruptions(&[]).is_empty());
        assert_eq!(corruptions(&[7]).len(), 3);
        assert_eq!(corruptions(&[7, 7]).len(), 5, "nothing to swap");
    }

    #[test]
    fn long_key_ids_are_shown_by_their_start_and_length() {
        assert_eq!(shown_key_id("k1"), "\"k1\"");
        let long = "x".repeat(2048);
        let shown = shown_key_id(&long);
        assert!(shown.ends_with("... (2048 bytes)"), "{shown}");
        assert!(shown.len() < 100);
        assert_eq!(shown_key_id("a\nb"), "\"a b\"");
    }
}
