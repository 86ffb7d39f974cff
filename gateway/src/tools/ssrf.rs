//! Server-side request forgery guard of `http_fetch`: only http and https, and never an
//! address inside the gateway's network (loopback, private, link-local, unique-local,
//! multicast, unspecified), whatever form the address takes (IPv4, IPv6, every IPv6 form
//! that embeds an IPv4 address, numeric host names) and on every redirect. Names are checked after resolution, by
//! the HTTP client's resolver, so the address checked is the address connected to.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// A destination `http_fetch` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// The IPv4 address in the last 32 bits of `segments`.
fn low_v4(segments: &[u16; 8]) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(segments[6]) << 16) | u32::from(segments[7]))
}

/// The IPv4 addresses an IPv6 address embeds, in every form that carries one to a host:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002:AABB:CCDD::/48`), Teredo
/// (`2001::/32`: its server, and its client XOR-ed with ones) and ISATAP (an interface
/// identifier of `0:5efe` or `200:5efe` followed by the address).
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let mut found = Vec::new();
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        found.push(low_v4(&s));
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        found.push(low_v4(&s));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        found.push(low_v4(&s));
    }
    if s[0] == 0x2002 {
        found.push(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        found.push(Ipv4Addr::from((u32::from(s[2]) << 16) | u32::from(s[3])));
        found.push(Ipv4Addr::from(!((u32::from(s[6]) << 16) | u32::from(s[7]))));
    }
    if (s[4] & !0x0200) == 0 && s[5] == 0x5efe {
        found.push(low_v4(&s));
    }
    found
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    if embedded_v4(ip).into_iter().any(forbidden_v4) {
        return true;
    }
    ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link local
        || (segments[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || segments[..3] == [0x64, 0xff9b, 1] // NAT64 local use (64:ff9b:1::/48)
        || segments[..4] == [0x100, 0, 0, 0] // discard only (100::/64)
        || segments[..2] == [0x2001, 0xdb8] // documentation
}

/// True when `ip` is inside a network the gateway must not reach for a caller.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Checks a URL before a request or a redirect: scheme, and the host when it is an address.
/// (Host names are checked once resolved, by [`GuardedResolver`].)
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), Refused> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Refused("only http and https URLs may be fetched".into()));
    }
    let ip = match url.host() {
        None => return Err(Refused("the URL has no host".into())),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    if !allow_private && is_forbidden(ip) {
        return Err(Refused(
            "the destination is a private or local address".into(),
        ));
    }
    Ok(())
}

/// Resolver of the `http_fetch` client: resolves with the system resolver and refuses a
/// name whose addresses include a forbidden one (so DNS cannot hand out a mix).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Lets private addresses through (tests).
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
                return Err(Box::new(Refused(
                    "the destination resolves to a private or local address".into(),
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal inside a client error, if the guard caused it.
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(&Url::parse(url).unwrap(), false).is_err()
    }

    #[test]
    fn refuses_local_addresses_in_every_form() {
        for url in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:a00:1]/",
            "http://[::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[64:ff9b:1::7f00:1]/",
            "http://[64:ff9b:1:abcd::1]/",
            "http://[2001:0:7f00:1::1]/",
            "http://[2001:0:5db8:1::80ff:fffe]/",
            "http://[2a00:1450::5efe:7f00:1]/",
            "http://[2a00:1450::200:5efe:a00:1]/",
            "http://[100::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
        ] {
            assert!(refused(url), "{url} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses_and_names() {
        for url in [
            "https://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://example.com/",
        ] {
            assert!(!refused(url), "{url} should be allowed");
        }
    }

    #[test]
    fn refuses_other_schemes() {
        for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
            assert!(refused(url), "{url}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_local_addresses() {
        let resolver = GuardedResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        let error = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(refusal_in(error.as_ref()).is_some(), "{error}");
    }

    #[test]
    fn allow_private_lets_local_addresses_through() {
        assert!(check_url(&Url::parse("http://127.0.0.1:8080/").unwrap(), true).is_ok());
    }
}
