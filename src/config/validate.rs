//! Validation with the apiserver's rules and messages
//! (`validation_encryption.go` with `reload = false`, plus the masking rule
//! the apiserver checks while building transformers).
//!
//! Every problem is reported, each as a [`FieldError`] whose `Display` reads
//! like apimachinery's `field.Error`:
//!
//! ```text
//! resources[0].providers[1].aesgcm.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded
//! resources: Required value: at least one resources is required
//! ```
//!
//! Values are rendered as the apiserver renders them (strings quoted as Go's
//! `%q`, numbers plain, lists and structs as Go's `encoding/json`), except
//! that a key's secret is always `"REDACTED"`, including inside a rendered
//! provider element (where the apiserver itself would print it).

use std::collections::{HashMap, HashSet};

use super::field::{FieldError, ValidationErrors};
use super::gofmt::{int_list, json_string, json_string_list, quote};
use super::types::{AesConfiguration, Key, KmsConfiguration, ProviderConfiguration};
use super::{go_url, EncryptionConfiguration, GroupResource};

const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const SECRETBOX_KEY_SIZES: &[usize] = &[32];
const REDACTED: &str = "\"REDACTED\"";

const MORE_THAN_ONE_ELEMENT: &str =
    "more than one provider specified in a single element, should split into different list elements";
const NO_PROVIDER: &str =
    "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity";
const BASE64_ENCODING: &str = "secrets must be base64 encoded";
const EVENTS_GROUP: &str = "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file";
const EXTENSIONS_GROUP: &str =
    "'extensions' group has been removed and cannot be used for encryption";
const STAR_RESOURCE: &str =
    "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources";
const OVERLAP: &str = "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked";
const NON_REST_API_RESOURCE: &str = "resources which do not have REST API/s cannot be encrypted";
const RESOURCE_NAME: &str = "resource name should not contain capital letters";
const RESOURCE_ACROSS_GROUP: &str = "encrypting the same resource across groups is not supported";
const DUPLICATE_RESOURCE: &str = "the same resource cannot be specified multiple times";

impl EncryptionConfiguration {
    /// Checks the configuration with the apiserver's rules; see [`validate`].
    ///
    /// # Errors
    ///
    /// Every problem found, as [`ValidationErrors`].
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        validate(self)
    }
}

/// Checks a configuration with every rule of the apiserver's
/// `ValidateEncryptionConfiguration` (as at startup, without hot reload), and
/// the rule it applies while building: a resource may not be listed after an
/// earlier rule's `*.group` or `*.*` that already covers it.
///
/// The KMS defaults are applied to a copy first, as the apiserver validates
/// the defaulted object; the loaders have already applied them.
///
/// ```
/// use k8s_envelope::config::EncryptionConfiguration;
///
/// let config = EncryptionConfiguration::from_yaml(br#"
/// kind: EncryptionConfiguration
/// apiVersion: apiserver.config.k8s.io/v1
/// resources:
///   - resources: [Secrets]
///     providers:
///       - aesgcm:
///           keys:
///             - name: key1
///               secret: not base64!
/// "#)?;
/// let errors = config.validate().expect_err("two problems");
/// let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
/// assert_eq!(messages, [
///     r#"resources[0].resources[0]: Invalid value: "Secrets": resource name should not contain capital letters"#,
///     r#"resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded"#,
/// ]);
/// # Ok::<(), k8s_envelope::config::ConfigError>(())
/// ```
///
/// # Errors
///
/// Every problem found, as [`ValidationErrors`], in the apiserver's order,
/// with masked resources last.
pub fn validate(config: &EncryptionConfiguration) -> Result<(), ValidationErrors> {
    let mut config = config.clone();
    config.apply_defaults();
    let mut errors = Vec::new();
    validate_into(&config, &mut errors);
    ValidationErrors::from_list(errors)
}

fn validate_into(c: &EncryptionConfiguration, errors: &mut Vec<FieldError>) {
    let root = "resources";
    if c.resources.is_empty() {
        errors.push(FieldError::required(
            root,
            format!("at least one {root} is required"),
        ));
        return;
    }

    let mut kms_names: HashSet<&str> = HashSet::new();
    for (i, rule) in c.resources.iter().enumerate() {
        let r = format!("{root}[{i}].resources");
        let p = format!("{root}[{i}].providers");

        if rule.resources.is_empty() {
            errors.push(FieldError::required(
                &r,
                format!("at least one {r} is required"),
            ));
        }
        validate_resource_overlap(&rule.resources, &r, errors);
        validate_resource_names(&rule.resources, &r, errors);

        if rule.providers.is_empty() {
            errors.push(FieldError::required(
                &p,
                format!("at least one {p} is required"),
            ));
        }

        for (j, provider) in rule.providers.iter().enumerate() {
            let path = format!("{p}[{j}]");
            validate_single_provider(provider, &path, errors);
            if let Some(kms) = &provider.kms {
                validate_kms(kms, &format!("{path}.kms"), &kms_names, errors);
                kms_names.insert(&kms.name);
            } else if let Some(aes) = &provider.aesgcm {
                validate_keys(
                    &aes.keys,
                    &format!("{path}.aesgcm.keys"),
                    AES_KEY_SIZES,
                    errors,
                );
            } else if let Some(aes) = &provider.aescbc {
                validate_keys(
                    &aes.keys,
                    &format!("{path}.aescbc.keys"),
                    AES_KEY_SIZES,
                    errors,
                );
            } else if let Some(secretbox) = &provider.secretbox {
                validate_keys(
                    &secretbox.keys,
                    &format!("{path}.secretbox.keys"),
                    SECRETBOX_KEY_SIZES,
                    errors,
                );
            }
        }
    }

    validate_masking(c, errors);
}

fn validate_resource_overlap(resources: &[String], path: &str, errors: &mut Vec<FieldError>) {
    if resources.len() < 2 {
        return;
    }
    let parsed: Vec<GroupResource> = resources.iter().map(|r| GroupResource::parse(r)).collect();
    let (has_duplicate, has_overlap) = duplicate_and_overlap(&parsed);
    if has_duplicate {
        errors.push(FieldError::invalid(
            path,
            json_string_list(resources),
            DUPLICATE_RESOURCE,
        ));
    }
    if has_overlap {
        errors.push(FieldError::invalid(
            path,
            json_string_list(resources),
            OVERLAP,
        ));
    }
}

/// Whether two entries are equal, and whether two overlap, with the verdicts
/// of the apiserver's loop over every ordered pair (kept as
/// `apiserver_pair_loop` in the tests), in linear time: that loop is
/// quadratic, and a 4 MiB configuration can list a million resources.
///
/// The loop sets `has_overlap` for an ordered pair `(r1, r2)` when `r1` is
/// `*.*`, or both are in one group and either is `*.group`. It skips only
/// the first pair of equal entries (counted as the duplicate), and the same
/// pair in the other order is then looked at, so the skip never changes the
/// verdict: there is an overlap exactly when some entry is `*.*` (the list
/// has two entries), or a group holding a `*.group` entry holds another entry.
fn duplicate_and_overlap(parsed: &[GroupResource]) -> (bool, bool) {
    let mut seen: HashSet<&GroupResource> = HashSet::with_capacity(parsed.len());
    let mut per_group: HashMap<&str, (usize, bool)> = HashMap::new();
    let mut has_duplicate = false;
    let mut has_any = false;
    for gr in parsed {
        has_duplicate |= !seen.insert(gr);
        has_any |= gr.is_any();
        let (count, wildcard) = per_group.entry(gr.group.as_str()).or_default();
        *count += 1;
        *wildcard |= gr.is_wildcard();
    }
    let has_overlap = (has_any && parsed.len() >= 2)
        || per_group
            .values()
            .any(|&(count, wildcard)| wildcard && count >= 2);
    (has_duplicate, has_overlap)
}

fn validate_resource_names(resources: &[String], path: &str, errors: &mut Vec<FieldError>) {
    for (j, res) in resources.iter().enumerate() {
        let detail = if res.to_lowercase() != *res {
            RESOURCE_NAME
        } else if res == "*" {
            STAR_RESOURCE
        } else if matches!(
            res.as_str(),
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            NON_REST_API_RESOURCE
        } else {
            let gr = GroupResource::parse(res);
            if gr.group == "events.k8s.io" {
                EVENTS_GROUP
            } else if gr.group == "extensions" {
                EXTENSIONS_GROUP
            } else if gr.group == "*" && gr.resource != "*" {
                RESOURCE_ACROSS_GROUP
            } else {
                continue;
            }
        };
        errors.push(FieldError::invalid(
            format!("{path}[{j}]"),
            quote(res),
            detail,
        ));
    }
}

fn validate_single_provider(
    provider: &ProviderConfiguration,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let detail = match provider.configured().len() {
        0 => NO_PROVIDER,
        1 => return,
        _ => MORE_THAN_ONE_ELEMENT,
    };
    errors.push(FieldError::invalid(path, provider_json(provider), detail));
}

fn validate_keys(keys: &[Key], path: &str, sizes: &[usize], errors: &mut Vec<FieldError>) {
    if keys.is_empty() {
        errors.push(FieldError::required(path, "at least one keys is required"));
        return;
    }
    for (k, key) in keys.iter().enumerate() {
        let path = format!("{path}[{k}]");
        if key.name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.name"),
                "name is a mandatory field for a key",
            ));
        }
        let secret_path = format!("{path}.secret");
        if key.secret.is_empty() {
            errors.push(FieldError::required(
                secret_path,
                "secret is a mandatory field for a key",
            ));
            continue;
        }
        match key.secret.decode() {
            Err(_) => errors.push(FieldError::invalid(secret_path, REDACTED, BASE64_ENCODING)),
            Ok(secret) if !sizes.contains(&secret.len()) => {
                errors.push(FieldError::invalid(
                    secret_path,
                    REDACTED,
                    format!(
                        "secret is not of the expected length, got {}, expected one of {}",
                        secret.len(),
                        int_list(sizes)
                    ),
                ));
            }
            Ok(_) => {}
        }
    }
}

fn validate_kms(
    c: &KmsConfiguration,
    path: &str,
    names: &HashSet<&str>,
    errors: &mut Vec<FieldError>,
) {
    // name
    let name_path = format!("{path}.name");
    if c.name.is_empty() {
        errors.push(FieldError::required(
            &name_path,
            "name is a mandatory field for a provider",
        ));
    }
    if c.api_version != "v1" && c.name.contains(':') {
        errors.push(FieldError::invalid(
            &name_path,
            quote(&c.name),
            format!("invalid KMS provider name {}, must not contain ':'", c.name),
        ));
    }
    // Names must be unique across all KMS providers when this one is not v1
    // (for v1 too only with hot reload, which this crate does not do).
    if c.api_version != "v1" && names.contains(c.name.as_str()) {
        errors.push(FieldError::invalid(
            &name_path,
            quote(&c.name),
            format!(
                "duplicate KMS provider name {}, names must be unique",
                c.name
            ),
        ));
    }

    // timeout
    let timeout = c.effective_timeout();
    if !timeout.is_positive() {
        errors.push(FieldError::invalid(
            format!("{path}.timeout"),
            json_string(&timeout.to_string()),
            "timeout should be a positive value",
        ));
    }

    // endpoint
    let endpoint_path = format!("{path}.endpoint");
    if c.endpoint.is_empty() {
        errors.push(FieldError::invalid(
            endpoint_path,
            quote(""),
            "endpoint is a mandatory field for a kms",
        ));
    } else {
        match go_url::scheme(&c.endpoint) {
            Err(e) => errors.push(FieldError::invalid(
                endpoint_path,
                quote(&c.endpoint),
                format!("invalid endpoint for kms provider, error: {e}"),
            )),
            Ok(scheme) if scheme != "unix" => errors.push(FieldError::invalid(
                endpoint_path,
                quote(&c.endpoint),
                format!(
                    "unsupported scheme {} for KMS provider, only unix is supported",
                    quote(&scheme)
                ),
            )),
            Ok(_) => {}
        }
    }

    // cachesize
    let cachesize_path = format!("{path}.cachesize");
    if let Some(size) = c.cachesize {
        if c.api_version != "v1" {
            errors.push(FieldError::invalid(
                &cachesize_path,
                size.to_string(),
                "cachesize is not supported in v2",
            ));
        }
        if c.api_version == "v1" && size == 0 {
            errors.push(FieldError::invalid(
                &cachesize_path,
                size.to_string(),
                "cachesize should be a positive value, or negative to disable",
            ));
        }
    }

    // apiVersion. The apiserver's message says "apiVersion" where it means
    // the value (which the field value shows); it is kept word for word.
    if c.api_version != "v1" && c.api_version != "v2" {
        errors.push(FieldError::invalid(
            format!("{path}.apiVersion"),
            quote(&c.api_version),
            "unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported",
        ));
    }
}

/// A resource listed after an earlier rule's `*.group` or `*.*` would never
/// be used; the apiserver refuses to start. Only earlier rules are
/// considered: within one list, the overlap rule already reports it.
fn validate_masking(c: &EncryptionConfiguration, errors: &mut Vec<FieldError>) {
    let mut earlier: HashSet<GroupResource> = HashSet::new();
    let any = GroupResource::any();
    for (i, rule) in c.resources.iter().enumerate() {
        let parsed: Vec<GroupResource> = rule
            .resources
            .iter()
            .map(|r| GroupResource::parse(r))
            .collect();
        for (j, (raw, gr)) in rule.resources.iter().zip(&parsed).enumerate() {
            let in_group = gr.any_in_group();
            let masked_by = if earlier.contains(&in_group) {
                in_group
            } else if earlier.contains(&any) {
                any.clone()
            } else {
                continue;
            };
            errors.push(FieldError::invalid(
                format!("resources[{i}].resources[{j}]"),
                quote(raw),
                format!(
                    "resource {} is masked by earlier rule {}",
                    quote(&gr.to_string()),
                    quote(&masked_by.to_string())
                ),
            ));
        }
        earlier.extend(parsed);
    }
}

/// A provider element as the apiserver's error shows it (Go's
/// `encoding/json` of the internal type), with every secret `"REDACTED"`.
fn provider_json(p: &ProviderConfiguration) -> String {
    fn keys(keys: &[Key]) -> String {
        if keys.is_empty() {
            return "null".to_owned();
        }
        let items: Vec<String> = keys
            .iter()
            .map(|k| format!(r#"{{"Name":{},"Secret":{REDACTED}}}"#, json_string(&k.name)))
            .collect();
        format!("[{}]", items.join(","))
    }
    fn aes(a: Option<&AesConfiguration>) -> String {
        a.map_or_else(
            || "null".to_owned(),
            |a| format!(r#"{{"Keys":{}}}"#, keys(&a.keys)),
        )
    }
    let secretbox = p.secretbox.as_ref().map_or_else(
        || "null".to_owned(),
        |s| format!(r#"{{"Keys":{}}}"#, keys(&s.keys)),
    );
    let identity = if p.identity.is_some() { "{}" } else { "null" };
    let kms = p.kms.as_ref().map_or_else(
        || "null".to_owned(),
        |k| {
            format!(
                r#"{{"APIVersion":{},"Name":{},"CacheSize":{},"Endpoint":{},"Timeout":{}}}"#,
                json_string(&k.api_version),
                json_string(&k.name),
                k.cachesize
                    .map_or_else(|| "null".to_owned(), |n| n.to_string()),
                json_string(&k.endpoint),
                k.timeout
                    .map_or_else(|| "null".to_owned(), |t| json_string(&t.to_string())),
            )
        },
    );
    format!(
        r#"{{"AESGCM":{},"AESCBC":{},"Secretbox":{secretbox},"Identity":{identity},"KMS":{kms}}}"#,
        aes(p.aesgcm.as_ref()),
        aes(p.aescbc.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The apiserver's loop over every ordered pair, as it is written in
    /// `validateResourceOverlap` (quadratic).
    fn apiserver_pair_loop(parsed: &[GroupResource]) -> (bool, bool) {
        let mut has_overlap = false;
        let mut has_duplicate = false;
        for (i, r1) in parsed.iter().enumerate() {
            for (j, r2) in parsed.iter().enumerate() {
                if i == j {
                    continue;
                }
                if r1 == r2 && !has_duplicate {
                    has_duplicate = true;
                    continue;
                }
                if has_overlap {
                    continue;
                }
                if r1.is_any() {
                    has_overlap = true;
                    continue;
                }
                if r1.group != r2.group {
                    continue;
                }
                if r1.is_wildcard() || r2.is_wildcard() {
                    has_overlap = true;
                }
            }
        }
        (has_duplicate, has_overlap)
    }

    /// Names drawn from a small set, so that duplicates, wildcards and
    /// shared groups are frequent.
    fn names() -> impl Strategy<Value = Vec<String>> {
        let name = prop::sample::select(vec![
            "secrets",
            "configmaps",
            "*.",
            "*.*",
            "*.apps",
            "deployments.apps",
            "jobs.batch",
            "*.batch",
            "foo.*",
            "*",
            "",
            ".",
            "a.b.c",
        ]);
        prop::collection::vec(name.prop_map(str::to_owned), 2..8)
    }

    proptest! {
        #[test]
        fn overlap_verdicts_match_the_apiserver_loop(resources in names()) {
            let parsed: Vec<GroupResource> =
                resources.iter().map(|r| GroupResource::parse(r)).collect();
            prop_assert_eq!(duplicate_and_overlap(&parsed), apiserver_pair_loop(&parsed));
        }
    }
}
