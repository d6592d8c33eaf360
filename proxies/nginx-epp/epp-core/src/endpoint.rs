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
    let port = if let Some(rest) = entry.strip_prefix('[') {
        let Some((h, p)) = rest.split_once("]:") else { return false };
        if h.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        p
    } else {
        let Some((h, p)) = entry.rsplit_once(':') else { return false };
        // Strict dotted quad: Ipv4Addr's parser already rejects shorthand forms like `1.2.3`.
        if h.parse::<Ipv4Addr>().is_err() {
            return false;
        }
        p
    };
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

/// `epp_allow`: the endpoints the EPP may pick — CIDRs (`10.0.0.0/8`, `fd00::/8`), bare IPs,
/// or exact `ip:port` / `[ipv6]:port`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<(std::net::IpAddr, u8)>,
    exact: Vec<String>,
}

impl Allowlist {
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut a = Allowlist::default();
        for e in entries {
            let e = e.trim();
            if e.is_empty() {
                continue;
            }
            if is_valid_endpoint(e) {
                a.exact.push(e.to_owned());
                continue;
            }
            let (ip, bits) = match e.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (e, None),
            };
            let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("invalid allow entry {e:?}: expected CIDR, IP or ip:port"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("invalid prefix length in {e:?}"))?,
                None => max,
            };
            a.nets.push((ip, bits));
        }
        Ok(a)
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.exact.is_empty()
    }

    /// `endpoint` must already be a valid `ip:port`.
    pub fn allows(&self, endpoint: &str) -> bool {
        if self.exact.iter().any(|x| x == endpoint) {
            return true;
        }
        let host = match endpoint.strip_prefix('[') {
            Some(rest) => rest.split_once("]:").map(|(h, _)| h),
            None => endpoint.rsplit_once(':').map(|(h, _)| h),
        };
        let Some(ip) = host.and_then(|h| h.parse::<std::net::IpAddr>().ok()) else { return false };
        self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }
}

fn in_net(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr::*;
    match (ip, net) {
        (V4(a), V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits as u32) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (V6(a), V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits as u32) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The first valid entry the allowlist accepts (any valid one when the list is empty).
pub fn first_allowed_endpoint(value: &str, allow: &Allowlist) -> Option<String> {
    valid_endpoints(value).into_iter().find(|e| allow.is_empty() || allow.allows(e))
}

#[cfg(test)]
mod allow_tests {
    use super::*;

    #[test]
    fn allowlist() {
        let a = Allowlist::parse(["10.0.0.0/8", "127.0.0.2:8000", "::1", "fd00::/8"]).unwrap();
        assert!(a.allows("10.1.2.3:80"));
        assert!(!a.allows("11.1.2.3:80"));
        assert!(a.allows("127.0.0.2:8000"));
        assert!(!a.allows("127.0.0.2:8001"));
        assert!(a.allows("[::1]:9"));
        assert!(a.allows("[fd12::1]:9"));
        assert!(!a.allows("[fe80::1]:9"));
        assert_eq!(first_allowed_endpoint("11.0.0.1:1,10.0.0.1:1", &a).as_deref(), Some("10.0.0.1:1"));
        assert_eq!(first_allowed_endpoint("11.0.0.1:1", &a), None);
        assert_eq!(first_allowed_endpoint("11.0.0.1:1", &Allowlist::default()).as_deref(), Some("11.0.0.1:1"));
        assert!(Allowlist::parse(["10.0.0.0/33"]).is_err());
        assert!(Allowlist::parse(["example.com"]).is_err());
        assert!(Allowlist::parse(["0.0.0.0/0"]).unwrap().allows("1.2.3.4:5"));
    }
}
