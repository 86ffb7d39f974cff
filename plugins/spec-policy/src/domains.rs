//! Domain matching on label boundaries: `google.com` matches `google.com` and
//! `www.google.com`, never `evilgoogle.com` or `google.com.evil.net`.

/// The lower-cased host of an http(s) URL, without a trailing dot; `None` when the URL is
/// not a valid http(s) URL with a host.
pub fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = match parsed.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some(host.trim_end_matches('.').to_string())
}

/// True when `host` is `domain` or one of its subdomains.
pub fn matches(host: &str, domain: &str) -> bool {
    let domain = domain
        .trim()
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if domain.is_empty() {
        return false;
    }
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(&domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// True when `host` matches any of `domains`.
pub fn matches_any(host: &str, domains: &[String]) -> bool {
    domains.iter().any(|d| matches(host, d))
}
