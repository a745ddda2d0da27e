//! Go's `time.Duration` as the EncryptionConfiguration writes it: `3s`,
//! `1m30s`, `500ms`, `-1s`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// A signed span of time in nanoseconds, parsed and printed exactly like Go's
/// `time.Duration` (`time.ParseDuration` and `Duration.String`).
///
/// Unlike [`std::time::Duration`] it can be zero or negative, which the
/// configuration can say and validation must be able to reject.
///
/// ```
/// use k8s_envelope::config::GoDuration;
///
/// let d: GoDuration = "1m30s".parse()?;
/// assert_eq!(d.as_nanos(), 90_000_000_000);
/// assert_eq!(d.to_string(), "1m30s");
/// assert_eq!("1.5h".parse::<GoDuration>()?.to_string(), "1h30m0s");
/// assert_eq!("-500us".parse::<GoDuration>()?.to_string(), "-500µs");
/// assert!("10".parse::<GoDuration>().is_err());
/// # Ok::<(), k8s_envelope::config::ParseDurationError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

impl GoDuration {
    /// Zero length.
    pub const ZERO: GoDuration = GoDuration(0);

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// A duration of `millis` milliseconds, saturating at the `i64` range.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(MILLISECOND as i64))
    }

    /// A duration of `secs` seconds, saturating at the `i64` range.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(SECOND as i64))
    }

    /// The length in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether the duration is greater than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The duration as a [`std::time::Duration`], or `None` when it is
    /// negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Parses a Go duration string: an optional sign and a sequence of decimal
    /// numbers, each with an optional fraction and a unit (`ns`, `us`/`µs`,
    /// `ms`, `s`, `m`, `h`), such as `300ms`, `-1.5h` or `2h45m`. `0` needs no
    /// unit.
    ///
    /// # Errors
    ///
    /// [`ParseDurationError`] with Go's message, e.g.
    /// `time: missing unit in duration "10"`.
    pub fn parse(s: &str) -> Result<Self, ParseDurationError> {
        parse_go_duration(s).map(Self)
    }
}

impl fmt::Display for GoDuration {
    /// Formats like Go's `Duration.String`: `72h3m0.5s`, `1.5ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        let mut out = String::with_capacity(24);
        if u < SECOND {
            let (prec, unit) = match u {
                0 => return f.write_str("0s"),
                u if u < MICROSECOND => (0, "ns"),
                u if u < MILLISECOND => (3, "µs"),
                _ => (6, "ms"),
            };
            let (int, frac) = split_frac(u, prec);
            push_number(&mut out, int, &frac);
            out.push_str(unit);
        } else {
            let (secs, frac) = split_frac(u, 9);
            u = secs;
            let s = u % 60;
            u /= 60;
            if u > 0 {
                let m = u % 60;
                u /= 60;
                if u > 0 {
                    out.push_str(&u.to_string());
                    out.push('h');
                }
                out.push_str(&m.to_string());
                out.push('m');
            }
            push_number(&mut out, s, &frac);
            out.push('s');
        }
        if neg {
            f.write_str("-")?;
        }
        f.write_str(&out)
    }
}

/// Splits `v` into `v / 10^prec` and the fraction's digits without trailing
/// zeros (empty when the fraction is zero).
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    let digits = if frac == 0 {
        String::new()
    } else {
        let s = format!("{frac:0width$}", width = prec as usize);
        s.trim_end_matches('0').to_owned()
    };
    (v / scale, digits)
}

fn push_number(out: &mut String, int: u64, frac: &str) {
    out.push_str(&int.to_string());
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
}

impl FromStr for GoDuration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for GoDuration {
    /// Serializes as Go's `Duration.String` (`3s`, `1m30s`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = GoDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"3s\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

/// A duration string that Go's `time.ParseDuration` would reject; the message
/// is Go's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDurationError {
    message: String,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseDurationError {}

fn invalid(orig: &str) -> ParseDurationError {
    ParseDurationError {
        message: format!("time: invalid duration {}", time_quote(orig)),
    }
}

/// The quoting of Go's `time` package: like `strconv.Quote` for ASCII, but
/// every non-ASCII or control byte as `\xNN`.
fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s.as_bytes() {
        if !(b' '..0x80).contains(&b) {
            out.push_str(&format!("\\x{b:02x}"));
        } else {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(char::from(b));
        }
    }
    out.push('"');
    out
}

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => NANOSECOND,
        // "us", "µs" (U+00B5 micro sign), "μs" (U+03BC Greek mu).
        b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => MICROSECOND,
        b"ms" => MILLISECOND,
        b"s" => SECOND,
        b"m" => MINUTE,
        b"h" => HOUR,
        _ => return None,
    })
}

const LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`, step for step.
fn parse_go_duration(orig: &str) -> Result<i64, ParseDurationError> {
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid(orig));
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        // The next character must be [0-9.].
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid(orig));
        }
        // [0-9]*
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(|| invalid(orig))?;
        s = rest;
        let pre = before != s.len();
        // (\.[0-9]*)?
        let mut post = false;
        let mut f = 0u64;
        let mut scale = 1f64;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (fv, fscale, rest) = leading_fraction(s);
            f = fv;
            scale = fscale;
            s = rest;
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid(orig));
        }
        // The unit: everything up to the next [0-9.].
        let end = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(ParseDurationError {
                message: format!("time: missing unit in duration {}", time_quote(orig)),
            });
        }
        let (unit_bytes, rest) = s.split_at(end);
        s = rest;
        let Some(unit) = unit_nanos(unit_bytes) else {
            return Err(ParseDurationError {
                message: format!(
                    "time: unknown unit {} in duration {}",
                    time_quote(&String::from_utf8_lossy(unit_bytes)),
                    time_quote(orig)
                ),
            });
        };
        if v > LIMIT / unit {
            return Err(invalid(orig));
        }
        v *= unit;
        if f > 0 {
            // As Go: float64 is precise enough for fractions of the largest
            // unit, and the result is truncated toward zero.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid(orig));
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid(orig));
        }
    }
    if neg {
        // d <= 2^63, so the negation fits (2^63 itself is i64::MIN).
        return Ok((d as i64).wrapping_neg());
    }
    i64::try_from(d).map_err(|_| invalid(orig))
}

/// Consumes leading decimal digits; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !c.is_ascii_digit() {
            break;
        }
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Consumes the digits of a fraction, ignoring precision beyond what fits.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<i64, String> {
        parse_go_duration(s).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_like_go() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("-0"), Ok(0));
        assert_eq!(p("0s"), Ok(0));
        assert_eq!(p("3s"), Ok(3_000_000_000));
        assert_eq!(p("+3s"), Ok(3_000_000_000));
        assert_eq!(p("-1s"), Ok(-1_000_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000_000));
        assert_eq!(p(".5s"), Ok(500_000_000));
        assert_eq!(p("1.s"), Ok(1_000_000_000));
        assert_eq!(p("500ms"), Ok(500_000_000));
        assert_eq!(p("10us"), Ok(10_000));
        assert_eq!(p("10µs"), Ok(10_000));
        assert_eq!(p("10μs"), Ok(10_000));
        assert_eq!(p("7ns"), Ok(7));
        assert_eq!(p("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(p("1h1m1s1ms1us1ns"), Ok(3_661_001_001_001));
        assert_eq!(p("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(p("-9223372036854775808ns"), Ok(i64::MIN));
        assert_eq!(p("1.5h"), Ok(5_400_000_000_000));
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(p(""), Err(r#"time: invalid duration """#.into()));
        assert_eq!(p("-"), Err(r#"time: invalid duration "-""#.into()));
        assert_eq!(p("s"), Err(r#"time: invalid duration "s""#.into()));
        assert_eq!(p(".s"), Err(r#"time: invalid duration ".s""#.into()));
        assert_eq!(p("3"), Err(r#"time: missing unit in duration "3""#.into()));
        assert_eq!(
            p("3x"),
            Err(r#"time: unknown unit "x" in duration "3x""#.into())
        );
        assert_eq!(
            p("3é"),
            Err(r#"time: unknown unit "\xc3\xa9" in duration "3\xc3\xa9""#.into())
        );
        assert_eq!(
            p("9223372036854775808ns"),
            Err(r#"time: invalid duration "9223372036854775808ns""#.into())
        );
        assert_eq!(
            p("3000000h"),
            Err(r#"time: invalid duration "3000000h""#.into())
        );
        assert!(p("1s ").is_err());
        assert!(p(" 1s").is_err());
    }

    #[test]
    fn formats_like_go() {
        let f = |n: i64| GoDuration::from_nanos(n).to_string();
        assert_eq!(f(0), "0s");
        assert_eq!(f(1), "1ns");
        assert_eq!(f(1_100), "1.1µs");
        assert_eq!(f(2_200_000), "2.2ms");
        assert_eq!(f(3_000_000_000), "3s");
        assert_eq!(f(-1_000_000_000), "-1s");
        assert_eq!(f(90_000_000_000), "1m30s");
        assert_eq!(f(3_600_000_000_000), "1h0m0s");
        assert_eq!(f(4_000_000_001), "4.000000001s");
        assert_eq!(f(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(f(i64::MAX), "2562047h47m16.854775807s");
    }
}
