//! The JSON Lines mode: the protocol is the library's (shared with the fuzz
//! target); this maps its outcome to the CLI's exit statuses.

use std::io::{BufRead, Write};

use k8s_envelope::jsonl::{self, Direction, RunError, Transform};
use k8s_envelope::Decrypted;

use crate::failure::Failure;
use crate::session::{Session, TransformFailure};

/// Transforms every line of `input`; fails with status 1 when any line failed.
pub fn run(
    session: &Session,
    direction: Direction,
    input: impl BufRead,
    output: impl Write,
) -> Result<(), Failure> {
    let failed = jsonl::run(session, direction, input, output).map_err(|e| match e {
        RunError::Read(_) => Failure::usage(e.to_string()),
        _ => Failure::transform(e.to_string()),
    })?;
    if failed > 0 {
        return Err(Failure::transform(format!(
            "{failed} line(s) could not be transformed"
        )));
    }
    Ok(())
}

impl Transform for Session {
    type Error = TransformFailure;

    fn encrypt(
        &self,
        resource: &str,
        storage_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, TransformFailure> {
        Session::encrypt(self, resource, storage_key, plaintext)
    }

    fn decrypt(
        &self,
        resource: &str,
        storage_key: &str,
        stored: &[u8],
    ) -> Result<Decrypted, TransformFailure> {
        Ok(Session::decrypt(self, resource, storage_key, stored)?)
    }
}
