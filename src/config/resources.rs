//! Group-resources as resource rules name them: `secrets`,
//! `deployments.apps`, `*.apps`, `*.`, `*.*`.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A Kubernetes API group and resource, as a resource rule names it.
///
/// [`parse`](GroupResource::parse) splits at the first `.` exactly like
/// Kubernetes' `schema.ParseGroupResource`: the resource is before it, the
/// group after it, and a name without a dot is in the core group (`""`).
/// `*` as the resource means every resource of the group, `*` as the group
/// every group.
///
/// | rule | group | resource |
/// |---|---|---|
/// | `secrets` | `""` | `secrets` |
/// | `deployments.apps` | `apps` | `deployments` |
/// | `*.apps` | `apps` | `*` |
/// | `*.` | `""` | `*` |
/// | `*.*` | `*` | `*` |
///
/// ```
/// use k8s_envelope::config::GroupResource;
///
/// let gr = GroupResource::parse("deployments.apps");
/// assert_eq!((gr.group.as_str(), gr.resource.as_str()), ("apps", "deployments"));
/// assert_eq!(GroupResource::parse("*.").to_string(), "*.");
/// assert_eq!(GroupResource::parse("secrets").to_string(), "secrets");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a group and a resource, nothing more; built with a literal as often as with `new`"
)]
pub struct GroupResource {
    /// The API group: `""` for the core group, `*` for every group.
    pub group: String,
    /// The resource (plural, lower case): `*` for every resource of the group.
    pub resource: String,
}

impl GroupResource {
    /// Pairs a group and a resource.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }

    /// Parses a resource rule like Kubernetes' `schema.ParseGroupResource`:
    /// everything before the first `.` is the resource, everything after it
    /// the group. Never fails; validation decides which names are allowed.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((resource, group)) => Self::new(group, resource),
            None => Self::new("", s),
        }
    }

    /// `*.*`: every resource of every group.
    pub fn any() -> Self {
        Self::new(WILDCARD, WILDCARD)
    }

    /// `*.group`: every resource of this resource's group.
    pub fn any_in_group(&self) -> Self {
        Self::new(self.group.clone(), WILDCARD)
    }

    /// The rule names that cover this group-resource, in the order the
    /// apiserver looks them up: the exact group-resource, then its group's
    /// `*.group` (`*.` for the core group), then `*.*`, as `(group,
    /// resource)` pairs borrowed from `self` (no allocation: reads look a
    /// transformer up with it for every value).
    ///
    /// ```
    /// use k8s_envelope::config::GroupResource;
    ///
    /// let gr = GroupResource::parse("deployments.apps");
    /// assert_eq!(gr.lookup_order(), [("apps", "deployments"), ("apps", "*"), ("*", "*")]);
    /// ```
    pub fn lookup_order(&self) -> [(&str, &str); 3] {
        lookup_order(&self.group, &self.resource)
    }

    /// Whether this is `*.*`.
    pub fn is_any(&self) -> bool {
        self.group == WILDCARD && self.resource == WILDCARD
    }

    /// Whether the resource is `*` (`*.group`, `*.` or `*.*`).
    pub fn is_wildcard(&self) -> bool {
        self.resource == WILDCARD
    }
}

const WILDCARD: &str = "*";

/// [`GroupResource::lookup_order`] of a group and resource given apart.
pub(crate) fn lookup_order<'a>(group: &'a str, resource: &'a str) -> [(&'a str, &'a str); 3] {
    [(group, resource), (group, WILDCARD), (WILDCARD, WILDCARD)]
}

impl fmt::Display for GroupResource {
    /// Writes the rule as a config would spell it (the apiserver's
    /// `grYAMLString`): `*.` for the core-group wildcard, otherwise
    /// `resource` or `resource.group`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            if self.resource == WILDCARD {
                return f.write_str("*.");
            }
            return f.write_str(&self.resource);
        }
        write!(f, "{}.{}", self.resource, self.group)
    }
}

impl FromStr for GroupResource {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::GroupResource;

    fn gr(s: &str) -> (String, String) {
        let gr = GroupResource::parse(s);
        (gr.group, gr.resource)
    }

    #[test]
    fn parse_like_kubernetes() {
        let p = |g: &str, r: &str| (g.to_owned(), r.to_owned());
        assert_eq!(gr("secrets"), p("", "secrets"));
        assert_eq!(gr("deployments.apps"), p("apps", "deployments"));
        assert_eq!(gr("*.apps"), p("apps", "*"));
        assert_eq!(gr("*."), p("", "*"));
        assert_eq!(gr("*.*"), p("*", "*"));
        assert_eq!(gr("*"), p("", "*"));
        assert_eq!(gr("events.events.k8s.io"), p("events.k8s.io", "events"));
        assert_eq!(gr("secrets.*"), p("*", "secrets"));
        assert_eq!(gr(""), p("", ""));
        assert_eq!(gr("."), p("", ""));
    }

    #[test]
    fn display_like_the_apiserver() {
        for s in ["secrets", "deployments.apps", "*.apps", "*.", "*.*"] {
            assert_eq!(GroupResource::parse(s).to_string(), s);
        }
        // `*` parses as the core-group wildcard and prints as such.
        assert_eq!(GroupResource::parse("*").to_string(), "*.");
    }
}
