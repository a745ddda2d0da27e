//! The manual: wire formats, design choices, and differences from
//! kube-apiserver. This module has no code.
//!
//! # Wire formats
//!
//! A stored value is `PREFIX || BODY`:
//!
//! | provider  | prefix                               | body |
//! |-----------|--------------------------------------|------|
//! | identity  | (none)                               | the plaintext |
//! | aescbc    | `k8s:enc:aescbc:v1:<keyname>:`       | IV(16) ‖ AES-CBC(PKCS#7(plaintext)) |
//! | aesgcm    | `k8s:enc:aesgcm:v1:<keyname>:`       | nonce(12) ‖ ciphertext ‖ tag(16), AAD = storage key |
//! | secretbox | `k8s:enc:secretbox:v1:<keyname>:`    | nonce(24) ‖ tag(16) ‖ ciphertext (XSalsa20-Poly1305) |
//! | kms v1    | `k8s:enc:kms:v1:<providername>:`     | len(2, big-endian) ‖ encrypted DEK ‖ aesgcm body (AES-CBC read for old data) |
//! | kms v2    | `k8s:enc:kms:v2:<providername>:`     | protobuf `EncryptedObject` (see [`crate::kms`]) |
//!
//! # Dependencies
//!
//! - AES-GCM: RustCrypto `aes-gcm` 0.11 (about 1.75x the throughput of 0.10 at
//!   1 KiB on AES-NI machines). AES-CBC: `aes` + `cbc`. Secretbox:
//!   `xsalsa20poly1305` 0.9, whose successor `crypto_secretbox` is only
//!   published as a pre-release pinned to a release candidate of `aead` that
//!   conflicts with `aes-gcm` 0.11; the wire format is the same.
//! - YAML: `serde-saphyr` (see [`crate::config`] for why).
//!
//! # Deliberate differences from kube-apiserver
//!
//! - An aescbc body that is only an IV is an error; the apiserver panics.
//! - The aescbc padding check accepts exactly what the apiserver accepts, but
//!   runs in constant time and reports every failure as the same
//!   [`Error::Decrypt`](crate::Error::Decrypt) (the apiserver distinguishes
//!   "invalid PKCS7 data" from "invalid padding on input", a padding oracle).
//! - Reading a `k8s:enc:` value of a resource that no rule covers gives
//!   [`Error::NoMatchingPrefix`](crate::Error::NoMatchingPrefix); the apiserver
//!   says "identity transformer tried to read encrypted data". Both refuse.
//! - KMS plugin client ([`GrpcClient`](crate::kms::GrpcClient)): with no
//!   plugin listening, calls fail at once as unavailable instead of waiting
//!   for the plugin until the timeout; a call that lost its connection is
//!   retried once on a new one, within the same timeout; answers over 4 MiB
//!   are refused.
//! - KMS endpoints ([`KmsEndpoint`](crate::kms::KmsEndpoint)): a host
//!   (`unix://host/path`), a relative or empty path, a query or a fragment
//!   are rejected when parsed; the apiserver accepts them and fails to dial.
//! - A [`Transformer`](crate::Transformer) refuses to read stored values
//!   above [`MAX_STORED_VALUE_LEN`](crate::MAX_STORED_VALUE_LEN) (16 MiB) and
//!   to write plaintexts above [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN);
//!   the apiserver has no limit of its own, only etcd's (1.5 MiB by default).
//!
//! # Rotation and re-encryption
//!
//! - The rotation steps ([`crate::rotation`]) follow Kubernetes' documented
//!   procedure for several apiservers: add as a reader, roll out, promote,
//!   roll out, re-encrypt, retire. They cannot see whether a configuration
//!   has reached every server; that stays the operator's job, and `plan`
//!   says so between the steps.
//! - etcd client: the crate speaks etcd's v3 gRPC API itself, with code
//!   generated (by the same `codegen` binary and `protox` as the KMS code,
//!   committed) from `proto/etcd/kv.proto`, a wire-compatible subset of
//!   etcd's `rpc.proto` (package, method names and field numbers; only
//!   Range, Put and Txn). The maintained `etcd-client` crate was the other
//!   choice; it runs `protoc` in its build script, which would have put the
//!   etcd store behind a feature and its tests outside `cargo test`. This
//!   way the default build needs no `protoc`, shares tonic, prost and
//!   rustls with the KMS client, and every test runs with `cargo test`. The
//!   cost is a small client to keep: no watch, lease, auth or maintenance
//!   APIs, and no username/password authentication (kube-apiserver uses
//!   client certificates, which are supported).
//! - A re-encryption writes with an etcd transaction that compares the key's
//!   `mod_revision` with the one read, and puts with `ignore_lease` (events
//!   keep their TTL); a value changed in between is read again. This is
//!   what kube-apiserver's own updates do, so the two never overwrite each
//!   other; `kubectl get secrets -A -o json | kubectl replace -f -` is the
//!   alternative through the apiserver.
//! - The resource (and so the rule) of a key is told from kube-apiserver's
//!   etcd layout ([`KeyLayout`](crate::rotation::KeyLayout)): a table of the
//!   built-in resources (from Kubernetes' own storage-path test data), and
//!   `/registry/<group>/<resource>/` for custom and aggregated resources.
//!   Keys it cannot place are reported, never guessed at; resources stored
//!   in another etcd through `--etcd-servers-overrides` need a run against
//!   that etcd.
//!
//! # Threat model
//!
//! The library protects values at rest in etcd against someone who can read
//! (aesgcm, secretbox, KMS: and modify) the store but not the configuration or
//! the KMS. aescbc gives confidentiality only. Values are bound to their
//! storage key by every AES-GCM based provider, so a value cannot be moved to
//! another object unnoticed; aescbc and secretbox do not bind it.
//!
//! Whatever the store, a configuration file or a plugin hands over is
//! hostile input: it may fail, never panic, and cost memory in proportion to
//! its size, never to a length written inside it (see "Untrusted input" in
//! the [crate documentation](crate)). The fuzz targets in `fuzz/` check this
//! on every CI run.
