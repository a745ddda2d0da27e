//! Which resource an etcd key belongs to, as kube-apiserver lays keys out.

use crate::config::GroupResource;

/// The apiserver's default `--etcd-prefix`.
pub const DEFAULT_ETCD_PREFIX: &str = "/registry";

/// The keys of every Secret as the apiserver stores them (under its default
/// `--etcd-prefix`): what a scan, a re-encryption and the CLI walk when no
/// prefix is given.
pub const SECRETS_PREFIX: &str = "/registry/secrets/";

/// How kube-apiserver names keys in etcd, to tell the resource (and so the
/// resource rule whose providers read and write the value) from a key.
///
/// The rule, from kube-apiserver's storage layout (Kubernetes'
/// `test/integration/etcd/data.go` lists every built-in resource's path):
///
/// - Keys are `<etcd-prefix>/<segment>/…`, with `--etcd-prefix` `/registry`
///   by default.
/// - A first segment with a dot is an API group: custom resources and
///   aggregated APIs are stored as `/registry/<group>/<resource>/…`
///   (`/registry/cert-manager.io/certificates/ns/name`,
///   `/registry/apiregistration.k8s.io/apiservices/name`,
///   `/registry/apiextensions.k8s.io/customresourcedefinitions/name`).
/// - Built-in resources are stored under their resource name without the
///   group (`/registry/deployments/ns/name` for `deployments.apps`), so the
///   group comes from a table of the built-in resources; a few use another
///   name: `minions` (nodes), `controllers` (replicationcontrollers),
///   `services/specs` (services), `services/endpoints` (endpoints),
///   `ingress` (ingresses.networking.k8s.io), `podsecuritypolicy`
///   (podsecuritypolicies.policy, removed in 1.25). Events of
///   `events.k8s.io` are stored with the core `events`, which is what a
///   rule names.
/// - `compact_rev_key`, `ranges/…` and `masterleases/…` are the apiserver's
///   own bookkeeping, never encrypted: [`KeyResource::Internal`].
///
/// Limits: a built-in resource newer than the table, or a key under another
/// `--etcd-prefix` than the one given, is [`KeyResource::Unknown`], and a
/// re-encryption reports it as failed rather than guess. Give the resource
/// explicitly ([`with_resource`](Self::with_resource), the CLI's
/// `--resource`) for those.
///
/// ```
/// use k8s_envelope::config::GroupResource;
/// use k8s_envelope::store::{KeyLayout, KeyResource};
///
/// let layout = KeyLayout::default();
/// let gr = |s: &str| KeyResource::Resource(GroupResource::parse(s));
/// assert_eq!(layout.resource_of(b"/registry/secrets/default/db"), gr("secrets"));
/// assert_eq!(layout.resource_of(b"/registry/deployments/default/web"), gr("deployments.apps"));
/// assert_eq!(layout.resource_of(b"/registry/services/specs/default/api"), gr("services"));
/// assert_eq!(layout.resource_of(b"/registry/cert-manager.io/certificates/ns/c"), gr("certificates.cert-manager.io"));
/// assert_eq!(layout.resource_of(b"/registry/compact_rev_key"), KeyResource::Internal);
/// assert_eq!(layout.resource_of(b"/registry/newthings/ns/x"), KeyResource::Unknown);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLayout {
    root: Vec<u8>,
    resource: Option<GroupResource>,
}

impl Default for KeyLayout {
    /// The default `--etcd-prefix`, `/registry`, and no resource override.
    fn default() -> Self {
        Self::new(DEFAULT_ETCD_PREFIX)
    }
}

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyResource {
    /// An object of this group-resource.
    Resource(GroupResource),
    /// The apiserver's own bookkeeping (never encrypted; left alone).
    Internal,
    /// Not a layout this type knows.
    Unknown,
}

/// The namespace and name of the object a key holds, from the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct ObjectKey {
    /// The namespace; `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

/// Built-in resources stored under a first segment without a dot: the
/// segment, the API group, the resource.
const BUILT_IN: &[(&str, &str, &str)] = &[
    // core
    ("configmaps", "", "configmaps"),
    ("controllers", "", "replicationcontrollers"),
    ("events", "", "events"),
    ("limitranges", "", "limitranges"),
    ("minions", "", "nodes"),
    ("namespaces", "", "namespaces"),
    ("persistentvolumeclaims", "", "persistentvolumeclaims"),
    ("persistentvolumes", "", "persistentvolumes"),
    ("pods", "", "pods"),
    ("podtemplates", "", "podtemplates"),
    ("resourcequotas", "", "resourcequotas"),
    ("secrets", "", "secrets"),
    ("serviceaccounts", "", "serviceaccounts"),
    // admissionregistration.k8s.io
    (
        "mutatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
    ),
    (
        "mutatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    (
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    (
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    // apps
    ("controllerrevisions", "apps", "controllerrevisions"),
    ("daemonsets", "apps", "daemonsets"),
    ("deployments", "apps", "deployments"),
    ("replicasets", "apps", "replicasets"),
    ("statefulsets", "apps", "statefulsets"),
    // autoscaling, batch
    (
        "horizontalpodautoscalers",
        "autoscaling",
        "horizontalpodautoscalers",
    ),
    ("cronjobs", "batch", "cronjobs"),
    ("jobs", "batch", "jobs"),
    // certificates.k8s.io
    (
        "certificatesigningrequests",
        "certificates.k8s.io",
        "certificatesigningrequests",
    ),
    (
        "clustertrustbundles",
        "certificates.k8s.io",
        "clustertrustbundles",
    ),
    (
        "podcertificaterequests",
        "certificates.k8s.io",
        "podcertificaterequests",
    ),
    // coordination.k8s.io, discovery.k8s.io
    ("leasecandidates", "coordination.k8s.io", "leasecandidates"),
    ("leases", "coordination.k8s.io", "leases"),
    ("endpointslices", "discovery.k8s.io", "endpointslices"),
    // flowcontrol.apiserver.k8s.io
    ("flowschemas", "flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    // internal.apiserver.k8s.io
    (
        "storageversions",
        "internal.apiserver.k8s.io",
        "storageversions",
    ),
    // networking.k8s.io
    ("ingress", "networking.k8s.io", "ingresses"),
    ("ingressclasses", "networking.k8s.io", "ingressclasses"),
    ("ipaddresses", "networking.k8s.io", "ipaddresses"),
    ("networkpolicies", "networking.k8s.io", "networkpolicies"),
    ("servicecidrs", "networking.k8s.io", "servicecidrs"),
    // node.k8s.io
    ("runtimeclasses", "node.k8s.io", "runtimeclasses"),
    // policy
    ("poddisruptionbudgets", "policy", "poddisruptionbudgets"),
    ("podsecuritypolicy", "policy", "podsecuritypolicies"),
    // rbac.authorization.k8s.io
    (
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
    ),
    ("clusterroles", "rbac.authorization.k8s.io", "clusterroles"),
    ("rolebindings", "rbac.authorization.k8s.io", "rolebindings"),
    ("roles", "rbac.authorization.k8s.io", "roles"),
    // resource.k8s.io
    ("deviceclasses", "resource.k8s.io", "deviceclasses"),
    ("devicetaintrules", "resource.k8s.io", "devicetaintrules"),
    ("resourceclaims", "resource.k8s.io", "resourceclaims"),
    (
        "resourceclaimtemplates",
        "resource.k8s.io",
        "resourceclaimtemplates",
    ),
    (
        "resourcepoolstatusrequests",
        "resource.k8s.io",
        "resourcepoolstatusrequests",
    ),
    ("resourceslices", "resource.k8s.io", "resourceslices"),
    // scheduling.k8s.io
    ("podgroups", "scheduling.k8s.io", "podgroups"),
    ("priorityclasses", "scheduling.k8s.io", "priorityclasses"),
    ("workloads", "scheduling.k8s.io", "workloads"),
    // storage.k8s.io
    ("csidrivers", "storage.k8s.io", "csidrivers"),
    ("csinodes", "storage.k8s.io", "csinodes"),
    (
        "csistoragecapacities",
        "storage.k8s.io",
        "csistoragecapacities",
    ),
    ("storageclasses", "storage.k8s.io", "storageclasses"),
    ("volumeattachments", "storage.k8s.io", "volumeattachments"),
    (
        "volumeattributesclasses",
        "storage.k8s.io",
        "volumeattributesclasses",
    ),
    // storagemigration.k8s.io
    (
        "storageversionmigrations",
        "storagemigration.k8s.io",
        "storageversionmigrations",
    ),
];

/// The apiserver's own keys, never encrypted.
const INTERNAL: &[&str] = &["compact_rev_key", "masterleases", "ranges"];

/// The cluster-scoped resources among those whose keys this type reads
/// (every other built-in one is namespaced): a key of one of these names
/// no namespace, a key of any other built-in names one.
const CLUSTER_SCOPED: &[&str] = &[
    "apiservices",
    "certificatesigningrequests",
    "clusterrolebindings",
    "clusterroles",
    "clustertrustbundles",
    "csidrivers",
    "csinodes",
    "customresourcedefinitions",
    "deviceclasses",
    "devicetaintrules",
    "flowschemas",
    "ingressclasses",
    "ipaddresses",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "mutatingwebhookconfigurations",
    "namespaces",
    "nodes",
    "persistentvolumes",
    "podsecuritypolicies",
    "priorityclasses",
    "prioritylevelconfigurations",
    "resourceslices",
    "runtimeclasses",
    "servicecidrs",
    "storageclasses",
    "storageversionmigrations",
    "storageversions",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "validatingwebhookconfigurations",
    "volumeattachments",
    "volumeattributesclasses",
];

/// `rest` (a key after its prefix and `/`) with a `/` in front again, as a
/// key under the empty prefix.
fn rest_with_slash(rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(rest.len() + 1);
    key.push(b'/');
    key.extend_from_slice(rest);
    key
}

impl KeyLayout {
    /// The layout under an `--etcd-prefix` (`/registry` by default; a
    /// trailing `/` is ignored).
    pub fn new(etcd_prefix: &str) -> Self {
        Self {
            root: etcd_prefix.trim_end_matches('/').as_bytes().to_vec(),
            resource: None,
        }
    }

    /// The same layout, but every key is taken to hold `resource`.
    pub fn with_resource(mut self, resource: GroupResource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// The resource override, if any.
    pub fn resource(&self) -> Option<&GroupResource> {
        self.resource.as_ref()
    }

    /// The key prefixes that hold the resources a rule names, for a scan or
    /// re-encryption of that rule: `/registry/secrets/` for `secrets`,
    /// `/registry/deployments/` for `deployments.apps`,
    /// `/registry/<group>/<resource>/` for a resource of another group, and
    /// the whole `/registry/` when a wildcard is among them.
    ///
    /// ```
    /// use k8s_envelope::store::KeyLayout;
    ///
    /// let layout = KeyLayout::default();
    /// let names = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    /// assert_eq!(layout.prefixes_for(&names(&["secrets", "services", "widgets.example.com"])),
    ///     ["/registry/secrets/", "/registry/services/specs/", "/registry/example.com/widgets/"]);
    /// assert_eq!(layout.prefixes_for(&names(&["secrets", "*.apps"])), ["/registry/"]);
    /// ```
    pub fn prefixes_for(&self, resources: &[String]) -> Vec<String> {
        let root = String::from_utf8_lossy(&self.root).into_owned();
        let mut prefixes: Vec<String> = Vec::new();
        for resource in resources {
            let gr = GroupResource::parse(resource);
            if gr.is_wildcard() || gr.group == "*" {
                return vec![format!("{root}/")];
            }
            let segment = match (gr.group.as_str(), gr.resource.as_str()) {
                ("", "services") => "services/specs".to_owned(),
                ("", "endpoints") => "services/endpoints".to_owned(),
                (group, name) => BUILT_IN
                    .iter()
                    .find(|(_, g, r)| *g == group && *r == name)
                    .map_or_else(
                        || {
                            if group.is_empty() {
                                name.to_owned()
                            } else {
                                format!("{group}/{name}")
                            }
                        },
                        |(segment, _, _)| (*segment).to_owned(),
                    ),
            };
            let prefix = format!("{root}/{segment}/");
            if !prefixes.contains(&prefix) {
                prefixes.push(prefix);
            }
        }
        prefixes
    }

    /// The namespace and name of the object `key` holds: the apiserver
    /// stores a namespaced object at `<resource path>/<namespace>/<name>` and
    /// a cluster-scoped one at `<resource path>/<name>`, where the resource
    /// path is the one [`resource_of`](Self::resource_of) reads (one
    /// segment for a built-in resource, two for `services/specs`,
    /// `services/endpoints` and a resource of a group with a dot; one for
    /// any other first segment when the layout has a resource override).
    /// `None` when the key is not of that shape or its names are not UTF-8.
    ///
    /// ```
    /// use k8s_envelope::store::{KeyLayout, ObjectKey};
    ///
    /// let layout = KeyLayout::default();
    /// let object = layout.object_of(b"/registry/secrets/default/db").unwrap();
    /// assert_eq!((object.namespace.as_deref(), object.name.as_str()), (Some("default"), "db"));
    /// let node = layout.object_of(b"/registry/minions/node-1").unwrap();
    /// assert_eq!((node.namespace, node.name.as_str()), (None, "node-1"));
    /// assert_eq!(layout.object_of(b"/registry/secrets/a/b/c"), None);
    /// ```
    pub fn object_of(&self, key: &[u8]) -> Option<ObjectKey> {
        let rest = key
            .strip_prefix(self.root.as_slice())
            .and_then(|rest| rest.strip_prefix(b"/"))?;
        let segments: Vec<&str> = std::str::from_utf8(rest).ok()?.split('/').collect();
        let first = *segments.first()?;
        let resource_segments = if first == "services" || first.contains('.') {
            2
        } else if BUILT_IN.iter().any(|(segment, _, _)| *segment == first)
            || self.resource.is_some()
        {
            1
        } else {
            return None;
        };
        // A built-in resource's scope is known: a key of the other shape
        // (damaged or crafted) names no object. A custom resource's is not.
        let scope = match KeyLayout::new("").resource_of(&rest_with_slash(rest)) {
            KeyResource::Resource(gr)
                if !first.contains('.') || CLUSTER_SCOPED.contains(&gr.resource.as_str()) =>
            {
                Some(CLUSTER_SCOPED.contains(&gr.resource.as_str()))
            }
            _ => None,
        };
        match segments.get(resource_segments..)? {
            [name] if !name.is_empty() && scope != Some(false) => Some(ObjectKey {
                namespace: None,
                name: (*name).to_owned(),
            }),
            [namespace, name]
                if !namespace.is_empty() && !name.is_empty() && scope != Some(true) =>
            {
                Some(ObjectKey {
                    namespace: Some((*namespace).to_owned()),
                    name: (*name).to_owned(),
                })
            }
            _ => None,
        }
    }

    /// What `key` holds.
    pub fn resource_of(&self, key: &[u8]) -> KeyResource {
        if let Some(resource) = &self.resource {
            return KeyResource::Resource(resource.clone());
        }
        let Some(rest) = key
            .strip_prefix(self.root.as_slice())
            .and_then(|rest| rest.strip_prefix(b"/"))
        else {
            return KeyResource::Unknown;
        };
        let mut segments = rest.split(|&b| b == b'/');
        let Some(first) = segments.next().and_then(|s| std::str::from_utf8(s).ok()) else {
            return KeyResource::Unknown;
        };
        let second = segments.next();
        if INTERNAL.contains(&first) {
            return KeyResource::Internal;
        }
        // A key with no object name under the segment is not an object.
        let Some(second) = second else {
            return KeyResource::Internal;
        };
        if first == "services" {
            return match second {
                b"specs" => KeyResource::Resource(GroupResource::new("", "services")),
                b"endpoints" => KeyResource::Resource(GroupResource::new("", "endpoints")),
                _ => KeyResource::Unknown,
            };
        }
        if first.contains('.') {
            return match std::str::from_utf8(second) {
                Ok(resource) if !resource.is_empty() && segments.next().is_some() => {
                    KeyResource::Resource(GroupResource::new(first, resource))
                }
                _ => KeyResource::Unknown,
            };
        }
        BUILT_IN
            .iter()
            .find(|(segment, _, _)| *segment == first)
            .map_or(KeyResource::Unknown, |(_, group, resource)| {
                KeyResource::Resource(GroupResource::new(*group, *resource))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gr(s: &str) -> KeyResource {
        KeyResource::Resource(GroupResource::parse(s))
    }

    #[test]
    fn kubernetes_layout() {
        let l = KeyLayout::default();
        let cases: &[(&[u8], KeyResource)] = &[
            (b"/registry/configmaps/ns/cm1", gr("configmaps")),
            (b"/registry/services/specs/ns/s", gr("services")),
            (b"/registry/services/endpoints/ns/e", gr("endpoints")),
            (b"/registry/minions/node1", gr("nodes")),
            (
                b"/registry/controllers/ns/rc1",
                gr("replicationcontrollers"),
            ),
            (b"/registry/ingress/ns/i", gr("ingresses.networking.k8s.io")),
            (b"/registry/leases/ns/l", gr("leases.coordination.k8s.io")),
            (
                b"/registry/apiregistration.k8s.io/apiservices/v1.foo",
                gr("apiservices.apiregistration.k8s.io"),
            ),
            (
                b"/registry/apiextensions.k8s.io/customresourcedefinitions/a.b.c",
                gr("customresourcedefinitions.apiextensions.k8s.io"),
            ),
            (
                b"/registry/cr.bar.com/foos/ns/cr1foo",
                gr("foos.cr.bar.com"),
            ),
            (
                b"/registry/custom.fancy.com/pants/cr2pant",
                gr("pants.custom.fancy.com"),
            ),
            (b"/registry/ranges/serviceips", KeyResource::Internal),
            (b"/registry/masterleases/10.0.0.1", KeyResource::Internal),
            (b"/registry/compact_rev_key", KeyResource::Internal),
            (b"/registry/secrets", KeyResource::Internal),
            (b"/registry/cr.bar.com/foos", KeyResource::Unknown),
            (b"/registry/services/other/x", KeyResource::Unknown),
            (b"/other/secrets/ns/a", KeyResource::Unknown),
            (b"/registry\xff/secrets", KeyResource::Unknown),
            (b"/registry/\xff/x", KeyResource::Unknown),
        ];
        for (key, want) in cases {
            assert_eq!(
                &l.resource_of(key),
                want,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
        // Every table entry's resource is lower case and its group a valid rule group.
        for (segment, group, resource) in BUILT_IN {
            assert!(!segment.contains('.') && !resource.is_empty());
            assert_eq!(
                l.resource_of(format!("/registry/{segment}/ns/x").as_bytes()),
                KeyResource::Resource(GroupResource::new(*group, *resource))
            );
        }
    }

    #[test]
    fn object_names_from_keys() {
        let l = KeyLayout::default();
        let named = |ns: Option<&str>, name: &str| {
            Some(ObjectKey {
                namespace: ns.map(str::to_owned),
                name: name.to_owned(),
            })
        };
        let cases: &[(&[u8], Option<ObjectKey>)] = &[
            (b"/registry/secrets/ns/s1", named(Some("ns"), "s1")),
            (b"/registry/services/specs/ns/api", named(Some("ns"), "api")),
            (
                b"/registry/services/endpoints/ns/api",
                named(Some("ns"), "api"),
            ),
            (b"/registry/minions/node1", named(None, "node1")),
            (b"/registry/cr.bar.com/foos/ns/f", named(Some("ns"), "f")),
            (b"/registry/custom.fancy.com/pants/p", named(None, "p")),
            (
                b"/registry/clusterroles/system:admin",
                named(None, "system:admin"),
            ),
            // The other shape than the resource's scope names no object.
            (b"/registry/secrets/ns", None),
            (b"/registry/minions/a/b", None),
            (
                b"/registry/apiextensions.k8s.io/customresourcedefinitions/ns/x",
                None,
            ),
            (
                b"/registry/apiextensions.k8s.io/customresourcedefinitions/a.b.c",
                named(None, "a.b.c"),
            ),
            (b"/registry/secrets", None),
            (b"/registry/secrets/", None),
            (b"/registry/secrets/ns/", None),
            (b"/registry/secrets//s", None),
            (b"/registry/secrets/a/b/c", None),
            (b"/registry/newthings/ns/x", None),
            (b"/registry/secrets/ns/\xff", None),
            (b"/other/secrets/ns/a", None),
        ];
        for (key, want) in cases {
            assert_eq!(&l.object_of(key), want, "{}", String::from_utf8_lossy(key));
        }
        let l = l.with_resource(GroupResource::parse("widgets.example.com"));
        assert_eq!(
            l.object_of(b"/registry/widgets/ns/w"),
            named(Some("ns"), "w")
        );
    }

    #[test]
    fn custom_prefix_and_override() {
        let l = KeyLayout::new("/k8s/");
        assert_eq!(l.resource_of(b"/k8s/secrets/ns/a"), gr("secrets"));
        assert_eq!(
            l.resource_of(b"/registry/secrets/ns/a"),
            KeyResource::Unknown
        );
        let l = l.with_resource(GroupResource::parse("widgets.example.com"));
        assert_eq!(l.resource_of(b"/anything"), gr("widgets.example.com"));
    }
}
