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

/// True when `host` (already lower-case, as [`url_host`] returns it) is `domain` or one of
/// its subdomains. Compares without allocating: this runs for every listed domain.
pub fn matches(host: &str, domain: &str) -> bool {
    let domain = domain.trim();
    let domain = domain.strip_prefix("*.").unwrap_or(domain);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty()
        || host.len() < domain.len()
        || !host.is_char_boundary(host.len() - domain.len())
    {
        return false;
    }
    let (head, tail) = host.split_at(host.len() - domain.len());
    tail.eq_ignore_ascii_case(domain) && (head.is_empty() || head.ends_with('.'))
}

/// True when `host` matches any of `domains`.
pub fn matches_any(host: &str, domains: &[String]) -> bool {
    domains.iter().any(|d| matches(host, d))
}
