//! The part of Go's `net/url.Parse` that KMS endpoint validation depends on:
//! whether the endpoint parses, and its scheme.
//!
//! The apiserver accepts an endpoint when `url.Parse` succeeds and the scheme
//! (lower-cased) is `unix`. This follows `url.Parse` closely enough to give the
//! same verdict and the same message for the endpoints people write
//! (`unix:///tmp/kms.sock`, `unix:///@abstract`, `tcp://host:port`,
//! `/tmp/kms.sock`) and for the usual ways of getting them wrong (control
//! characters, a missing scheme, bad `%` escapes, bad ports, bad characters in
//! the host). The URL is never used for anything else.

use super::gofmt::{quote, quote_bytes};

/// Returns the lower-cased scheme of `raw`, or Go's `url.Parse` error message
/// (`parse "…": …`).
pub(crate) fn scheme(raw: &str) -> Result<String, String> {
    let (u, frag) = match raw.split_once('#') {
        Some((u, frag)) => (u, frag),
        None => (raw, ""),
    };
    let scheme = parse(u).map_err(|e| format!("parse {}: {e}", quote(u)))?;
    if !frag.is_empty() {
        unescape(frag.as_bytes(), Mode::Fragment)
            .map_err(|e| format!("parse {}: {e}", quote(raw)))?;
    }
    Ok(scheme)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

fn parse(raw: &str) -> Result<String, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    if raw == "*" {
        return Ok(String::new());
    }
    let (scheme, rest) = split_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();

    let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(before, _)| before)
    };

    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // A rootless path: opaque, nothing more is checked.
            return Ok(scheme);
        }
        let segment = rest.split_once('/').map_or(rest, |(first, _)| first);
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_owned());
        }
    }

    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, remainder) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, ""),
        };
        parse_authority(authority)?;
        path = remainder;
    }
    unescape(path.as_bytes(), Mode::Path)?;
    Ok(scheme)
}

/// Go's `getScheme`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<(), String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    parse_host(host)?;
    if let Some(userinfo) = userinfo {
        if !valid_userinfo(userinfo) {
            return Err("net/url: invalid userinfo".to_owned());
        }
        match userinfo.split_once(':') {
            Some((user, password)) => {
                unescape(user.as_bytes(), Mode::UserPassword)?;
                unescape(password.as_bytes(), Mode::UserPassword)?;
            }
            None => {
                unescape(userinfo.as_bytes(), Mode::UserPassword)?;
            }
        }
    }
    Ok(())
}

fn parse_host(host: &str) -> Result<(), String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
        if let Some(zone) = host[..i].find("%25") {
            unescape(&host.as_bytes()[..zone], Mode::Host)?;
            unescape(&host.as_bytes()[zone..i], Mode::Zone)?;
            unescape(&host.as_bytes()[i..], Mode::Host)?;
            return Ok(());
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape(host.as_bytes(), Mode::Host)
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        _ if port.is_empty() => true,
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn valid_userinfo(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    })
}

/// Go's `unescape`, reduced to its error checks.
fn unescape(s: &[u8], mode: Mode) -> Result<(), String> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                if i + 2 >= s.len()
                    || !s[i + 1].is_ascii_hexdigit()
                    || !s[i + 2].is_ascii_hexdigit()
                {
                    let end = (i + 3).min(s.len());
                    return Err(escape_error(&s[i..end]));
                }
                if mode == Mode::Host && unhex(s[i + 1]) < 8 && &s[i..i + 3] != b"%25" {
                    return Err(escape_error(&s[i..i + 3]));
                }
                if mode == Mode::Zone {
                    let v = unhex(s[i + 1]) << 4 | unhex(s[i + 2]);
                    if &s[i..i + 3] != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(escape_error(&s[i..i + 3]));
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        quote_bytes(&s[i..i + 1])
                    ));
                }
                i += 1;
            }
        }
    }
    Ok(())
}

fn escape_error(s: &[u8]) -> String {
    format!("invalid URL escape {}", quote_bytes(s))
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `shouldEscape` for the host and zone modes (the only ones whose
/// plain characters can be errors).
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    !matches!(c, b'-' | b'_' | b'.' | b'~')
}

#[cfg(test)]
mod tests {
    use super::scheme;

    fn err(endpoint: &str) -> String {
        match scheme(endpoint) {
            Ok(s) => panic!("{endpoint} parsed, scheme {s}"),
            Err(e) => e,
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("unix:///tmp/x.sock").as_deref(), Ok("unix"));
        assert_eq!(scheme("unix:///@abstract").as_deref(), Ok("unix"));
        assert_eq!(scheme("UNIX:///tmp/x.sock").as_deref(), Ok("unix"));
        assert_eq!(scheme("unix:/tmp/x.sock").as_deref(), Ok("unix"));
        assert_eq!(scheme("unix:relative.sock").as_deref(), Ok("unix"));
        assert_eq!(scheme("tcp://127.0.0.1:8080").as_deref(), Ok("tcp"));
        assert_eq!(
            scheme("https://kms.example:443/x?y#z").as_deref(),
            Ok("https")
        );
        assert_eq!(scheme("/tmp/x.sock").as_deref(), Ok(""));
        assert_eq!(scheme("x.sock").as_deref(), Ok(""));
        assert_eq!(
            err("1unix:///x"),
            "parse \"1unix:///x\": first path segment in URL cannot contain colon"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(err("://x"), r#"parse "://x": missing protocol scheme"#);
        assert_eq!(
            err("unix:///tmp/\nx"),
            r#"parse "unix:///tmp/\nx": net/url: invalid control character in URL"#
        );
        assert_eq!(
            err("unix:///tmp/%zz"),
            r#"parse "unix:///tmp/%zz": invalid URL escape "%zz""#
        );
        assert_eq!(
            err("unix:///tmp/%4"),
            r#"parse "unix:///tmp/%4": invalid URL escape "%4""#
        );
        assert_eq!(
            err("tcp://host:port"),
            r#"parse "tcp://host:port": invalid port ":port" after host"#
        );
        assert_eq!(
            err("unix://bad host/x"),
            r#"parse "unix://bad host/x": invalid character " " in host name"#
        );
        assert_eq!(
            err("unix://[::1/x"),
            r#"parse "unix://[::1/x": missing ']' in host"#
        );
        assert_eq!(
            err("unix:///x#%zz"),
            r#"parse "unix:///x#%zz": invalid URL escape "%zz""#
        );
        assert_eq!(
            err("unix://a b@host/x"),
            "parse \"unix://a b@host/x\": net/url: invalid userinfo"
        );
    }
}
