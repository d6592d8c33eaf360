//! Parsing of the EPP's destination value: `ip:port[,ip:port...]`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Returns the first entry of a comma list that is a literal `ipv4:port` or `[ipv6]:port`
/// (port 1..=65535), normalised (trimmed). None when no entry is valid: such a value must never
/// reach proxy_pass, where a hostname would trigger a DNS lookup or an unintended upstream.
pub fn first_valid_endpoint(value: &str) -> Option<String> {
    value.split(',').map(str::trim).find(|e| is_valid_endpoint(e)).map(str::to_owned)
}

/// All valid entries, in order (the EPP's fallbacks follow the first).
pub fn valid_endpoints(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|e| is_valid_endpoint(e)).map(str::to_owned).collect()
}

pub fn is_valid_endpoint(entry: &str) -> bool {
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((h, p)) = rest.split_once("]:") else { return false };
        if h.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        (h, p)
    } else {
        let Some((h, p)) = entry.rsplit_once(':') else { return false };
        // Strict dotted quad: Ipv4Addr's parser already rejects shorthand forms like `1.2.3`.
        if h.parse::<Ipv4Addr>().is_err() {
            return false;
        }
        (h, p)
    };
    let _ = host;
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && matches!(port.parse::<u32>(), Ok(1..=65535))
}

/// `host:port` for the EPP target (a name is allowed there: it is resolved by the gRPC client).
pub fn parse_target(value: &str) -> Result<(String, u16), String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("empty EPP address".into());
    }
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| format!("bad EPP address {v:?}: expected [ipv6]:port"))?;
        (h.to_owned(), p)
    } else {
        let (h, p) = v.rsplit_once(':').ok_or_else(|| format!("bad EPP address {v:?}: expected host:port"))?;
        (h.to_owned(), p)
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '[' || c == ']') {
        return Err(format!("bad EPP host in {v:?}"));
    }
    let port: u16 = port.parse().map_err(|_| format!("bad EPP port in {v:?}"))?;
    if port == 0 {
        return Err(format!("bad EPP port in {v:?}"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_first_valid_entry() {
        assert_eq!(first_valid_endpoint("10.0.0.1:8000").as_deref(), Some("10.0.0.1:8000"));
        assert_eq!(first_valid_endpoint(" 10.0.0.1:8000 , 10.0.0.2:8000").as_deref(), Some("10.0.0.1:8000"));
        assert_eq!(first_valid_endpoint("garbage,10.0.0.2:8000").as_deref(), Some("10.0.0.2:8000"));
        assert_eq!(first_valid_endpoint("[::1]:8080").as_deref(), Some("[::1]:8080"));
        assert_eq!(valid_endpoints("a,127.0.0.1:1,[::1]:2,x:3"), vec!["127.0.0.1:1", "[::1]:2"]);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", ",", "garbage", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:80x",
            "example.com:80", "::1:80", "[::1]", "[zz]:80", "1.2.3:80", "256.1.1.1:80", "10.0.0.1:80/x",
            "10.0.0.1:+80", "10.0.0.1:0080000", "http://10.0.0.1:80",
        ] {
            assert_eq!(first_valid_endpoint(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn target_parsing() {
        assert_eq!(parse_target("127.0.0.1:9002").unwrap(), ("127.0.0.1".into(), 9002));
        assert_eq!(parse_target("epp.default:9002").unwrap(), ("epp.default".into(), 9002));
        assert_eq!(parse_target("[::1]:9002").unwrap(), ("::1".into(), 9002));
        assert!(parse_target("").is_err());
        assert!(parse_target("epp").is_err());
        assert!(parse_target("epp:0").is_err());
        assert!(parse_target("epp:99999").is_err());
        assert!(parse_target("a/b:1").is_err());
    }
}
