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
//!   `salsa20` 0.11 (XSalsa20) and `poly1305` 0.9, composed as NaCl's
//!   `crypto_secretbox` defines it. Not `xsalsa20poly1305` 0.9: it pins
//!   `poly1305` 0.8; and its successor `crypto_secretbox` is only published
//!   as a pre-release pinned to release candidates that conflict with
//!   `aes-gcm` 0.11.
//! - `poly1305`'s AVX2 backend is slower than its portable one under current
//!   rustc (its intrinsics are called, not inlined: a 1 KiB MAC takes 1.22
//!   us against 0.41 us), so this repository's `.cargo/config.toml` selects
//!   the portable one with `--cfg poly1305_backend="soft"`. That file applies
//!   to builds inside this repository (the CLI, tests, benches) only: a
//!   program that depends on this crate and uses secretbox gets the same
//!   speed-up by putting that flag in its own `.cargo/config.toml`
//!   (`[build] rustflags`) or `RUSTFLAGS`. Correctness does not depend on it.
//! - YAML: `serde-saphyr` (see [`crate::config`] for why).
//! - Randomness: `chacha20` (its `rng` feature) seeded by `getrandom`, with
//!   `forkguard` for fork detection; see [Randomness](#randomness).
//! - Optionally, AES-GCM and AES-CBC from AWS-LC (`aws-lc-rs`); see
//!   [The `aws-lc` feature](#the-aws-lc-feature).
//!
//! # Randomness
//!
//! Key material comes straight from the operating system (`getrandom`):
//! generated keys, KMS v1 DEKs (one system call per KMS v1 write, about
//! 250 ns), and KMS v2 DEKs and seeds (one per key rotation), so that no
//! state of this process's generators ever held a key. Nonces (aesgcm,
//! secretbox, KMS), IVs (aescbc) and the other values that are public once
//! written come from a ChaCha20 generator per thread, seeded with 32 bytes
//! from the operating system:
//!
//! - Why not the OS for every value: a `getrandom` system call costs about
//!   250 ns on the 2-core CI machine, more than a whole AES-256-GCM seal of 1
//!   KiB with AWS-LC; a draw from the thread's buffered keystream costs a few
//!   nanoseconds and needs no lock, so threads do not contend.
//! - Why ChaCha20: the keystream of a 256-bit key is a CSPRNG as strong as
//!   the cipher (the Linux kernel's generator is built the same way), and the
//!   RustCrypto `chacha20` crate generates four blocks at once with AVX2. Its
//!   state is zeroized when the thread exits.
//! - Reseeding: from the OS after every 64 KiB of output (a snapshot of one
//!   state reveals at most that much), and in a child process after `fork`,
//!   before its first value: a `pthread_atfork` child handler (from the
//!   `forkguard` crate, so that this crate keeps `#![forbid(unsafe_code)]`)
//!   bumps a counter that every draw compares with the one its state was
//!   seeded under. The check is one load of a value nobody writes, where
//!   comparing process IDs would cost a `getpid` system call (about 120 ns
//!   here) per value; should the handler fail to register, process IDs are
//!   compared anyway. A child that forked through a raw `clone` system call
//!   (bypassing libc) is not detected; `std::process::Command`, libc's
//!   `fork` and `posix_spawn` are all fine. `tests/random_fork.rs` checks
//!   that a forked child and its parent draw different nonces.
//! - Requests over 256 bytes (generated keys) go to the OS directly.
//!
//! `rand`'s `ThreadRng` was the other candidate: also ChaCha, reseeded every
//! 64 KiB, but by its own documentation not reseeded after `fork`.
//!
//! # The `aws-lc` feature
//!
//! Off by default: the default build is pure Rust (RustCrypto). With
//! `--features aws-lc`, AES-GCM (aesgcm, KMS v1 and v2 data, the local-KEK
//! plugin) and AES-CBC (aescbc, old KMS v1 data) run on AWS-LC through
//! `aws-lc-rs`, behind the same internal interface (`src/primitive/`); the
//! bytes on the wire are the same and every vector passes with either
//! backend. [`AES_BACKEND`](crate::AES_BACKEND) says which one a build uses.
//! Secretbox, HKDF, SHA-256 and the random generator stay as they are.
//!
//! What it changes: AWS-LC's AES-GCM is hand-written assembly that fuses
//! AES-CTR with GHASH (VAES and VPCLMULQDQ on AVX-512 machines); on the CI
//! machine a raw AES-256-GCM seal of 1 KiB takes 154 ns against
//! RustCrypto's 453, and at 64 KiB it runs at 22 GB/s against 3.5 (one
//! criterion run); through the aesgcm provider a 1 KiB write or read takes
//! about 40% of the default build's time. Seal and open are out of place, so the
//! plaintext is not copied before encryption. Key schedules are held by
//! AWS-LC, which cleanses them when they are freed.
//!
//! Build requirements: a C compiler (`cc`; Debian's `gcc` or `clang`) for
//! `aws-lc-sys`, which builds AWS-LC from its bundled sources with the `cc`
//! crate and ships pre-generated bindings and assembly for the common
//! targets (x86_64 and aarch64 Linux and macOS), so neither CMake, Go,
//! Perl, NASM nor libclang is needed there. The first build takes about a
//! minute on two cores. `.ci/perf` runs the test suite with the feature.
//!
//! ## FIPS 140-3
//!
//! `aws-lc-rs` also has a FIPS mode (its `fips` feature, building
//! `aws-lc-fips-sys`, AWS-LC's FIPS 140-3 validated module). This crate does
//! not offer it; enabling it would take:
//!
//! - build requirements of the validated module: CMake, Go and Perl (and a
//!   C compiler), on one of the operating environments its certificate
//!   lists, with the module built exactly as its security policy says;
//! - moving every approved function into the module: SHA-256 and HKDF (KMS
//!   v2 seeds), the random generator (AWS-LC's DRBG instead of ChaCha20),
//!   and AES-GCM nonce generation: in FIPS mode an AES-GCM key may only
//!   seal with a nonce the module generates (`RandomizedNonceKey`), which
//!   fits aesgcm, KMS v1 and KMS v2 seed mode (random nonces) but not KMS
//!   v2 `AES_GCM_KEY` writes (4 random bytes and a counter, which this crate
//!   must reproduce), and not the out-of-place seal used here;
//! - giving up what is not approved: secretbox (XSalsa20-Poly1305) would be
//!   read-only at best, and aescbc (no integrity) should be read-only too;
//! - and for a claim of FIPS compliance, a review of the whole service, not
//!   only of the cryptographic module.
//!
//! # Deliberate differences from kube-apiserver
//!
//! - An aescbc body that is only an IV is an error; the apiserver panics.
//! - The aescbc padding check accepts exactly what the apiserver accepts, but
//!   runs in constant time and reports every failure as the same
//!   [`Error::Decrypt`](crate::Error::Decrypt) (the apiserver distinguishes
//!   "invalid PKCS7 data" from "invalid padding on input"). That hides which
//!   check failed, not whether the read failed: success against failure is
//!   still an oracle for whoever can plant a modified value and watch it be
//!   read (a scan's readable against unreadable, too), so aescbc values can
//!   be decrypted that way. The cure is an AEAD provider, not a better
//!   check.
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
//! - Opt-in only: KMS v2 in seed mode can seal several values with one
//!   derived key
//!   ([`KmsV2Options::writes_per_derived_key`](crate::kms::KmsV2Options::writes_per_derived_key),
//!   default 1: a fresh derived key per value, as the apiserver does). The
//!   values are the same format and the apiserver reads them; the option's
//!   documentation gives the security cost.
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
//!   etcd layout ([`KeyLayout`](crate::store::KeyLayout)): a table of the
//!   built-in resources (from Kubernetes' own storage-path test data), and
//!   `/registry/<group>/<resource>/` for custom and aggregated resources.
//!   Keys it cannot place are reported, never guessed at; resources stored
//!   in another etcd through `--etcd-servers-overrides` need a run against
//!   that etcd.
//!
//! # etcd snapshots
//!
//! - Reader and writer: written here (the `snapshot` module, feature `snapshot`; about 700 lines
//!   with the etcd layer), not taken from a crate. `bbolt-rs` (a port of
//!   the Go library, reads and writes) maps the file with `unsafe` code,
//!   trusts what it finds, and refuses a file with no stored freelist,
//!   which is what etcd writes on Linux (`NoFreelistSync`); `bolt-lite`
//!   reads only, holds the whole file in memory and does not handle every
//!   page kind; `nut` reads the freelist on open too; `jammdb` is another
//!   format. The part of bbolt a reader and a fresh-file writer need has
//!   not changed since its format version 2, so it is read with safe,
//!   bounds-checked code, each page once, with the file never written, and
//!   written as a new file only, through the private atomic writer.
//! - What the writer guarantees bbolt (and etcd after a restore, which
//!   writes to the file): page IDs equal to their position, keys strictly
//!   ascending, each branch key equal to its child's first key, at least
//!   two children per branch page, every page below the high-water mark in
//!   use, an empty freelist page, both meta pages valid (the second with
//!   the higher transaction ID), the file exactly the pages plus the
//!   SHA-256 `snapshot save` appends.
//! - Revisions of a re-keyed snapshot: see the `snapshot` module (each
//!   rewritten value a new revision above the input's, history compacted
//!   away at the new revision, both compaction marks there).
//! - Versions: tested against Debian's etcd 3.4 (the one CI installs):
//!   snapshots it saves are read, and the re-keyed output is restored by
//!   its `etcdctl snapshot restore` and served. etcd 3.5 and 3.6 keep the
//!   same bbolt and MVCC layout and add keys to the `meta` bucket (`term`,
//!   `confState`; 3.6 `storageVersion`), which a re-keying carries over
//!   untouched; their restore moved to `etcdutl snapshot restore`, which,
//!   unlike 3.4's, needs the `meta` bucket (always written). They could not
//!   be tested here: Debian 12 ships only 3.4 and nothing else is reachable
//!   from CI. Since 3.4.31 etcd refuses a `storageVersion` other than 3.4
//!   or 3.5, so a re-keyed 3.6 snapshot restores on 3.6 only, as the input
//!   would.
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
//!
//! # From the apiserver's Go files to this crate
//!
//! This table is for a reviewer who knows kube-apiserver: it gives the module that
//! implements each Go file (or function) of encryption at rest. The Go sources
//! read for it are kubernetes/apiserver `master` at `24a394e516bf` (2026-07-23).
//! The files listed are the same there as at tag `v0.37.0-beta.0` (Kubernetes
//! v1.37.0-beta.0), and the same as at `v0.36.3` (Kubernetes v1.36.3) except for
//! a regenerated `kmsv2/v2/api.pb.go`. The kubernetes/kms sources are `master` at
//! `7dc88c042aa2` (2026-07-22), the `k8s.io/kms` version that the apiserver's
//! `go.mod` pins. In kubernetes/kubernetes the same files are under
//! `staging/src/k8s.io/apiserver/` and `staging/src/k8s.io/kms/`. The
//! standard-library rows cite golang/go. "Manual" in a note means
//! [Deliberate differences from kube-apiserver](#deliberate-differences-from-kube-apiserver).
//! Paths on the right are files of this crate; most of its submodules are
//! private, so the public item to look for is given in parentheses.
//!
//! | Go file (repository/path) | what it does | here | notes |
//! |---|---|---|---|
//! | apiserver `pkg/apis/apiserver/types_encryption.go` | internal EncryptionConfiguration types | `src/config/types.rs` | one set of types mirrors v1 directly: no internal/versioned split, no conversion |
//! | apiserver `pkg/apis/apiserver/v1/types_encryption.go` | `apiserver.config.k8s.io/v1` types, JSON field names | `src/config/types.rs` (`EncryptionConfiguration`, `KmsConfiguration`, ...) | |
//! | apiserver `pkg/apis/apiserver/v1/defaults.go` | KMS defaults: `apiVersion` v1, `timeout` 3s, v1 `cachesize` 1000 | `src/config/types.rs` (`apply_defaults`) | |
//! | apiserver `pkg/apis/apiserver/v1/register.go` | the kinds; legacy `kind: EncryptionConfig`, `apiVersion: v1` | `src/config/load.rs`, `src/config/types.rs` (`LEGACY_KIND`, `LEGACY_API_VERSION`) | |
//! | apiserver `pkg/apis/apiserver/validation/validation_encryption.go` | validation rules and messages | `src/config/validate.rs` (`config::validate`, `FieldError`) | rules as with `reload = false`; secrets shown as `REDACTED` (see `crate::config`) |
//! | apiserver `pkg/server/options/encryptionconfig/config.go`: `loadConfig`, `loadDataAndHash`, strict `codecs` | read and strictly decode the file | `src/config/load.rs` (`EncryptionConfiguration::load`) | 4 MiB cap; YAML 1.2 (`serde-saphyr`), where the apiserver reads YAML 1.1 through JSON (see `crate::config`) |
//! | `config.go`: `computeEncryptionConfigHash`, `GetEncryptionConfigHash` | `sha256:<hex>` of the file | `src/fingerprint.rs` (`config_hash`) | |
//! | `config.go`: `getTransformerOverridesAndKMSPluginProbes`, `prefixTransformersAndProbes` | config to one transformer per group-resource; "masked by earlier rule" check | `src/config/build.rs` (`build`, `build_with_kms`); masking check in `src/config/validate.rs` | masking is reported as validation errors, every one of them; the apiserver stops at the first while building |
//! | `config.go`: `aesPrefixTransformer`, `secretboxPrefixTransformer` | one prefix transformer per key name | `src/providers/keyed.rs` | |
//! | `config.go`: `kmsPrefixTransformer`, `envelopePrefixTransformer`, `primeAndProbeKMSv2` | build KMS providers and their gRPC clients; first Status | `src/kms/factory.rs` (`GrpcKmsFactory`, `refresh_all`) | |
//! | `config.go`: `unionTransformers` | KMS v1 data: AES-GCM read, then AES-CBC; a CBC read is stale | `src/kms/v1.rs` | |
//! | `config.go`: `kmsv2PluginProbe` (`check`, `isKMSv2ProviderHealthyAndMaybeRotateDEK`, `rotateDEKOnKeyIDChange`, `getCurrentState`), the 1 min / 10 s / 3 min constants | KMS v2 Status poll, new DEK or seed when the key ID changes, write-state expiry | `src/kms/v2/mod.rs` (`KmsV2Provider::refresh`, `run_status_loop`) | intervals and TTL are `KmsV2Options` fields |
//! | `config.go`: `kmsPluginProbe`, `kmsHealthChecker`, `toHealthzCheck` | `/healthz/kms-providers` checks | `src/kms/v2/mod.rs` (`KmsHealth`, `KmsV2Provider::health`) | no HTTP endpoint; KMS v1 plugins are not probed (`Version` is checked before the first call) |
//! | `config.go`: `GetKDF`, `kdfEnabledPerKMS` | KMS v2 writes a seed or a DEK | `src/kms/v2/mod.rs` (`KmsV2Options::write_mode`) | an option per provider, not a global for tests |
//! | `config.go`: `StaticTransformers`, `transformerFromOverrides` | group-resource lookup with `*.group` and `*.*` fallback | `src/config/build.rs` (`ResourceTransformers::for_group_resource`) | a resource that no rule covers: see the manual (`NoMatchingPrefix`) |
//! | `config.go`: `DynamicTransformers`, `resourceTransformer`, `transformTracker` | a transformer set that can be swapped at run time | `src/reload.rs` (`ReloadingTransformers`, `LoadedConfig`) | |
//! | `config.go`: `requestInfoTransformer` | resource in the context for logs and metrics | `src/observe/mod.rs` (`Observer`) | |
//! | apiserver `pkg/server/options/encryptionconfig/controller/controller.go` | automatic reload: poll the file, build, check health, swap, close the old set after a grace period | `src/reload.rs` (`ReloadingTransformers::check`, `run`) | the caller picks the interval (apiserver: 1 min); grace period from `ReloadOptions::grace_period` (default 1 min), not 2 × the sum of KMS timeouts; the uniqueness rule for v1 names under reload is not applied |
//! | apiserver `pkg/server/options/encryptionconfig/metrics/metrics.go` | reload counters and timestamps; last config hash | not implemented | the hash is `LoadedConfig::hash` and `ReloadOutcome::Reloaded` |
//! | apiserver `pkg/server/options/etcd.go` | `--encryption-provider-config`, `--encryption-provider-config-automatic-reload` | the CLI's `--config`; `src/reload.rs` | |
//! | apiserver `pkg/storage/value/transformer.go` | `Transformer`, `Context`, `PrefixTransformer`, `NewPrefixTransformers` (write with the first, read by prefix, stale) | `src/provider.rs` (`Provider`), `src/prefix.rs` (`Transformer`; the prefix parser `StoredPrefix` is crate-private) | blocking methods for static keys; size limits (manual) |
//! | apiserver `pkg/storage/value/metrics.go` | transformation latency and counts, KMS v1 cache misses, DEK generation | `src/observe/mod.rs`, `src/observe/metrics.rs` | `k8s_envelope_` prefix; no `resource` label; adds stale reads and cache hits; no `data_key_generation_*` |
//! | apiserver `pkg/storage/value/encrypt/identity/identity.go` | identity; refuses values that start with `k8s:enc:` | `src/providers/identity.rs` | |
//! | apiserver `pkg/storage/value/encrypt/aes/aes.go`: `gcm`, `NewGCMTransformer` | aesgcm, random 96-bit nonce, storage key as AAD | `src/providers/aesgcm.rs`, `src/primitive/gcm.rs` (`gcm_aws_lc.rs` with `aws-lc`) | |
//! | `aes.go`: `cbc`, `NewCBCTransformer` | aescbc, PKCS#7 | `src/providers/aescbc.rs`, `src/primitive/cbc.rs` (`cbc_aws_lc.rs`) | an IV-only body is an error (apiserver panics); constant-time padding check, one error for every failure (manual) |
//! | `aes.go`: `NewGCMTransformerWithUniqueKeyUnsafe`, `nonceGenerator` | KMS v2 `AES_GCM_KEY` writes: nonce of 4 random bytes and an 8-byte counter | `src/kms/v2/data_key.rs` | when the counter runs out the write is refused; the apiserver exits (`klog.Fatal`) |
//! | `aes.go`: `GenerateKey` | random keys | `src/random.rs` | keys straight from the OS; nonces from a ChaCha20 generator per thread, seeded from the OS (see the manual's Randomness section) |
//! | apiserver `pkg/storage/value/encrypt/aes/aes_extended_nonce.go` | KMS v2 seed mode: HKDF-SHA256 expand with a 32-byte info per value | `src/kms/v2/data_key.rs` | opt-in `writes_per_derived_key` (manual) |
//! | apiserver `pkg/storage/value/encrypt/aes/cache.go` | cache of derived keys (10 min), keyed by storage key | `src/kms/cache.rs`, `src/kms/v2/data_key.rs` | bounded (4096 entries); keyed by seed and info, so an empty storage key does not panic |
//! | apiserver `pkg/storage/value/encrypt/secretbox/secretbox.go` | secretbox (XSalsa20-Poly1305) | `src/providers/secretbox.rs`, `src/primitive/secretbox.rs` | |
//! | apiserver `pkg/storage/value/encrypt/envelope/envelope.go` | KMS v1: a DEK per write, LRU cache of DEKs, plugin `Service` interface | `src/kms/v1.rs` (`KmsV1Provider`), `src/kms/service.rs` (`KmsServiceV1`), `src/kms/cache.rs` | |
//! | apiserver `pkg/storage/value/encrypt/envelope/grpc_service.go` | KMS v1 gRPC client, checks `Version` | `src/kms/grpc.rs` (`GrpcClient::as_v1`) | fails at once when no plugin is listening; one retry on a new connection; answers over 4 MiB refused (manual) |
//! | apiserver `pkg/storage/value/encrypt/envelope/kmsv2/envelope.go` | KMS v2 transformer; `State`, `ValidateEncryptCapability`, `GenerateTransformer`, `ValidateEncryptedObject`, `ValidateKeyID`, `generateCacheKey`, `GetHashIfNotEmpty` | `src/kms/v2/mod.rs` (`KmsV2Provider`, `key_id_hash`), `src/kms/encrypted_object.rs` (validation), `src/kms/service.rs` (`KmsServiceV2`) | |
//! | apiserver `pkg/storage/value/encrypt/envelope/kmsv2/grpc_service.go` | KMS v2 gRPC client, `:authority` `localhost` | `src/kms/grpc.rs` (`GrpcClient::as_v2`) | as for KMS v1 (manual) |
//! | apiserver `pkg/storage/value/encrypt/envelope/kmsv2/cache.go` | cache of decrypted DEKs and seeds (24 h), keyed by SHA-256 | `src/kms/cache.rs`, `src/kms/v2/mod.rs` | bounded (4096 entries): the apiserver's grows without limit (kubernetes/kubernetes#131853, #134774) |
//! | apiserver `pkg/storage/value/encrypt/envelope/kmsv2/v2/api.proto` (`api.pb.go`, `v2.go`) | `EncryptedObject`, the stored v2 envelope | `proto/encryptedobject/api.proto`, `src/kms/encrypted_object.rs` (`EncryptedObjectRef`) | codec written by hand, zero-copy; the prost code in `src/kms/generated/encrypted_object.rs` is only for the unit tests (the other tests use `test-support/src/encrypted_object.rs`, written apart) |
//! | apiserver `pkg/storage/value/encrypt/envelope/metrics/metrics.go` | KMS metrics: call latency, key-ID hashes, DEK cache | `src/observe/metrics.rs` | a subset; `status` is `ok`/`error`, not the gRPC code; no `apiserver_id_hash` |
//! | apiserver `pkg/storage/value/encrypt/envelope/testing/v1beta1/kms_plugin_mock.go`, `testing/v2/kms_plugin_mock.go` | base64 mock plugins for tests | `src/kms/mock.rs` (`Base64Kms`, in process, feature `test-util`), `kms-plugin/src/mock.rs` (`Base64MockKek`, over gRPC) | v2 `Status` answers `v2` (the Go mock answers `v2beta1`) |
//! | apiserver `pkg/storage/etcd3/store.go` | transforms on every read and write; an update compares `mod_revision` | `src/store/etcd/mod.rs` (`EtcdStore`), `src/walk/reencrypt.rs` | re-encryption is a tool that runs on its own; the apiserver rewrites a stale value only when the object is updated |
//! | apiserver `pkg/registry/generic/registry/store.go` (`NamespaceKeyFunc`); kubernetes `test/integration/etcd/data.go` | etcd key layout | `src/store/layout.rs` (`KeyLayout`) | a table of built-in resources taken from `data.go` |
//! | apiserver `pkg/server/options/encryptionconfig/testdata/` | valid and invalid configs | `tests/integration/config.rs` (conformance corpus) | |
//! | kms `apis/v2/api.proto` (`api.pb.go`, `api_grpc.pb.go`) | KMS v2 plugin API | `proto/kmsv2/api.proto`, `src/kms/generated/v2.rs` | |
//! | kms `apis/v1beta1/api.proto` (`api.pb.go`, `api_grpc.pb.go`) | KMS v1 plugin API | `proto/kmsv1beta1/api.proto`, `src/kms/generated/v1beta1.rs` | |
//! | kms `pkg/service/interface.go` | `Service` a plugin implements: Status, Encrypt, Decrypt | `kms-plugin/src/lib.rs` (`Kek`) | `Kek` has key_id, wrap, unwrap and healthy; the server builds Status from them |
//! | kms `pkg/service/grpc_service.go` | the plugin's gRPC server | `kms-plugin/src/server.rs` (`PluginServer`), `kms-plugin/src/socket.rs` | serves v1beta1 as well as v2; socket mode 0600, a stale socket is replaced, and the socket is removed on shutdown |
//! | kms `pkg/util/util.go` (`ParseEndpoint`) | `unix://` endpoint to a socket path or `@abstract` name | `src/kms/endpoint.rs` (`KmsEndpoint`) | rejects a host, a relative or empty path, a query or a fragment (manual) |
//! | kms `internal/plugins/_mock/` (`plugin.go`, `pkcs11/pkcs11.go`) | mock plugin on SoftHSM through PKCS#11 | no counterpart; `kms-plugin/src/local.rs` (`LocalKek`) is the local plugin here | `LocalKek` keeps the KEK in a file |
//! | go `src/net/url/url.go` (`url.Parse`) | parsing the endpoint during validation | `src/config/go_url.rs` | only as much as gives the same verdict, scheme and message |
//! | go `src/time/format.go` (`ParseDuration`), `src/time/time.go` (`Duration.String`) | the `timeout` field | `src/config/duration.rs` (`GoDuration`) | |
//! | go `src/strconv/quote.go` (`Quote`) | values quoted in error messages | `src/config/gofmt.rs` | |
//! | apimachinery `pkg/util/validation/field/errors.go` | `field.Error` text | `src/config/validate.rs` (`FieldError`) | |
//! | apimachinery `pkg/runtime/schema/group_version.go` (`ParseGroupResource`) | `deployments.apps` to a group and a resource | `src/config/resources.rs` (`GroupResource::parse`) | |
//! | apimachinery `pkg/util/cache/expiring.go` | TTL cache under both KMS v2 caches | `src/kms/cache.rs` (`CacheLimits`) | LRU and bounded as well as expiring |
//! | x/crypto `nacl/secretbox/secretbox.go`, `hkdf/hkdf.go` | NaCl secretbox; HKDF | `src/primitive/secretbox.rs`; `hkdf` crate in `src/kms/v2/data_key.rs` | secretbox put together from `salsa20` and `poly1305` (manual, Dependencies) |
//!
//! The apiserver has no counterpart for these modules: `src/rotation/` (rotation
//! steps, plans, scans, the re-encryption driver), `src/lint.rs`, `src/jsonl.rs`,
//! `src/store/dump/`, `src/observe/audit.rs` and `describe.rs`, and the key
//! fingerprints and probe in `src/fingerprint.rs`. Kubernetes documents key
//! rotation as a procedure for operators (or does it with `kubectl replace`); none
//! of it is Go code in these repositories.
