//! Values of the module's directives, validated here so that both nginx's config parser and the
//! unit tests use the same rules.

use std::time::Duration;

/// How the request body goes to the EPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Headers only (end_of_stream=false when the request has a body, which the EPP never sees).
    None,
    /// Headers, then the whole body in one message (default).
    Buffered,
    /// Headers, then the body in chunks (FULL_DUPLEX_STREAMED).
    Streamed,
}

impl BodyMode {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "buffered" => Ok(Self::Buffered),
            "streamed" => Ok(Self::Streamed),
            other => Err(format!("invalid body mode {other:?}: expected none, buffered or streamed")),
        }
    }
    /// ProcessingMode.BodySendMode on the wire.
    pub fn wire(self) -> i32 {
        match self {
            Self::None => 0,
            Self::Buffered => 2,
            Self::Streamed => 4,
        }
    }
}

/// Header names travel lower-case (HTTP/2 rules); anything but an RFC 9110 token is refused.
pub fn validate_header_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty header name".into());
    }
    let ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !ok {
        return Err(format!("invalid header name {s:?}"));
    }
    Ok(s.to_ascii_lowercase())
}

/// Timeout in milliseconds: 1..=600000.
pub fn validate_timeout_ms(ms: i64) -> Result<Duration, String> {
    if !(1..=600_000).contains(&ms) {
        return Err(format!("timeout {ms} ms out of range 1..600000"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// TLS to the EPP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TlsSettings {
    /// PEM CA bundle; None = built-in web PKI roots.
    pub ca_file: Option<String>,
    /// SNI and the name verified; None = the target's host.
    pub server_name: Option<String>,
    /// false = accept any certificate (tests only).
    pub verify: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_modes() {
        assert_eq!(BodyMode::parse("none").unwrap(), BodyMode::None);
        assert_eq!(BodyMode::parse("buffered").unwrap().wire(), 2);
        assert_eq!(BodyMode::parse("streamed").unwrap().wire(), 4);
        assert!(BodyMode::parse("Buffered").is_err());
        assert!(BodyMode::parse("").is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(validate_header_name("X-Gateway-Destination-Endpoint").unwrap(), "x-gateway-destination-endpoint");
        assert!(validate_header_name("").is_err());
        assert!(validate_header_name("bad name").is_err());
        assert!(validate_header_name("bad:name").is_err());
        assert!(validate_header_name("bad\nname").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(validate_timeout_ms(200).unwrap(), Duration::from_millis(200));
        assert!(validate_timeout_ms(0).is_err());
        assert!(validate_timeout_ms(-5).is_err());
        assert!(validate_timeout_ms(600_001).is_err());
    }
}
