//! Where requests may go: a registry host parsed with docker's grammar, and the one type that
//! turns it into URLs and decides TLS.
//!
//! Every base URL the plugin talks to is an [`Endpoint`]: the registry API, the notary server,
//! the ACR login server. Nothing else builds `https://…` strings, so the rules live here once:
//! a host is a DNS name or an IP literal with an optional port and nothing else (no userinfo,
//! path, query or fragment can ride along); certificate checks are skipped only for a loopback
//! registry that is not ACR (docker's `isInsecure`), because an Entra or ACR token must never
//! travel over TLS that was not verified; and "is this ACR" is answered on the parsed host.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use url::Url;

/// Docker Hub's name in references and GUNs.
pub const DOCKER_HUB: &str = "docker.io";
/// Where docker sends Docker Hub's registry API calls.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Docker Hub's notary server (docker/cli `trust.NotaryServer`).
const DOCKER_HUB_NOTARY: &str = "notary.docker.io";

/// Suffixes of ACR login servers in the public and sovereign clouds.
pub const ACR_SUFFIXES: [&str; 3] = [".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// Why a registry host or a server URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a host name, IPv4 or `[IPv6]` address with an optional port.
    #[error(
        "{host:?} is not a registry host: use a DNS name or an IP address with an optional port, e.g. myregistry.azurecr.io or 127.0.0.1:5000"
    )]
    BadHost {
        /// What was given.
        host: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{host:?}: the port must be a number from 1 to 65535")]
    BadPort {
        /// What was given.
        host: String,
    },
    /// A server URL that is not a bare `https://host[:port]`.
    #[error(
        "{var}={value:?} is refused: {why}; give the server as https://HOST[:PORT] with nothing after it"
    )]
    BadServerUrl {
        /// Where the URL came from.
        var: &'static str,
        /// The value, with any userinfo removed.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A registry host as docker's reference grammar (distribution/reference `domainAndPort`)
/// accepts it: DNS-like components of `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`,
/// or an IPv6 literal in brackets, then an optional `:port`. Nothing else can be in it, so
/// it is safe as the authority of a URL, a path in docker's config dir and a key in `auths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// As written (`host[:port]`); the form docker uses in GUNs, `auths` and `tls/`.
    text: String,
    /// Without brackets or port, lower-cased for comparisons.
    name: String,
    ip: Option<IpAddr>,
    port: Option<u16>,
}

fn is_domain_component(c: &[u8]) -> bool {
    !c.is_empty()
        && c.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && c[0] != b'-'
        && c[c.len() - 1] != b'-'
}

impl RegistryHost {
    /// Parses `host[:port]` with docker's grammar. Refuses anything else, in particular `#`,
    /// `@`, `/`, `?`, spaces and userinfo, which would change where a URL built from it goes.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let bad = || EndpointError::BadHost {
            host: text.to_string(),
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
            if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(bad());
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (inner, port)
        } else {
            let (host, port) = match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            };
            if !host.split('.').all(|c| is_domain_component(c.as_bytes())) {
                return Err(bad());
            }
            (host, port)
        };
        let port = match port {
            None => None,
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(bad());
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(EndpointError::BadPort {
                        host: text.to_string(),
                    });
                }
            },
        };
        let ip = if text.starts_with('[') {
            // The grammar allows any run of hex digits and colons; only a real address can be
            // put into a URL.
            Some(IpAddr::V6(host.parse::<Ipv6Addr>().map_err(|_| bad())?))
        } else {
            host.parse::<IpAddr>().ok()
        };
        let name = host.to_ascii_lowercase();
        if ip.is_none() {
            // A name the URL parser reads differently (an all-digit last label is read as an
            // IPv4 address, `xn--` labels are decoded) would send requests elsewhere: refuse it.
            match url::Host::parse(&name) {
                Ok(url::Host::Domain(d)) if d == name => {}
                _ => return Err(bad()),
            }
        }
        Ok(RegistryHost {
            text: text.to_string(),
            name,
            ip,
            port,
        })
    }

    /// `host[:port]` as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host without port or brackets, lower-cased.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port, if one was written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Docker's insecure-registry rule for loopback: `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.name == "localhost" || self.ip.is_some_and(|ip| ip.is_loopback())
    }

    /// Whether this is Docker Hub (`docker.io`).
    pub fn is_docker_hub(&self) -> bool {
        self.text == DOCKER_HUB
    }

    /// Whether this is an ACR login server: a name under one of [`ACR_SUFFIXES`] (with at least
    /// one label before it), or `host[:port]` listed in `configured` (`acr_registries` in the
    /// plugin settings, for private endpoints and tests). Decided on the parsed host only.
    pub fn is_acr(&self, configured: &[String]) -> bool {
        let listed = configured
            .iter()
            .filter_map(|c| RegistryHost::parse(c.trim()).ok())
            .any(|c| c.name == self.name && c.port == self.port);
        listed
            || (self.ip.is_none()
                && ACR_SUFFIXES.iter().any(|s| {
                    self.name
                        .strip_suffix(s)
                        .is_some_and(|label| !label.is_empty())
                }))
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether certificates are checked. An enum, not a bool, so that skipping is always named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Verify against the platform roots plus `<config>/tls/<host:port>/*.crt`.
    Verify,
    /// docker's rule for a loopback registry: no certificate checks. Never for ACR.
    SkipVerifyLoopback,
}

/// A server base URL (`https://host[:port]`, or `http://` for a plain-HTTP loopback registry)
/// with its TLS policy. The only way to get one is from a [`RegistryHost`] or a checked
/// server URL, so its URLs carry no path, query, fragment or userinfo but those built here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
    tls_key: String,
    tls: Tls,
    acr: bool,
}

fn base_url(scheme: &str, host: &RegistryHost) -> Url {
    // Built from parts of a validated host, so only the authority changes.
    let mut url = Url::parse(&format!("{scheme}://localhost/")).expect("static URL parses");
    let host_text = match host.ip {
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.name.clone(),
    };
    // Cannot fail: the host passed the URL parser in `RegistryHost::parse`.
    let _ = url.set_host(Some(&host_text));
    let _ = url.set_port(host.port);
    url
}

impl Endpoint {
    /// The registry API of `host` (Docker Hub's API is on `registry-1.docker.io`). `acr`
    /// comes from [`RegistryHost::is_acr`]: an ACR endpoint is always verified.
    pub fn registry(host: &RegistryHost, acr: bool) -> Self {
        let api = if host.is_docker_hub() {
            RegistryHost::parse(DOCKER_HUB_API).expect("static host parses")
        } else {
            host.clone()
        };
        Endpoint {
            base: base_url("https", &api),
            tls_key: api.text.clone(),
            tls: Self::tls_for(host, acr),
            acr,
        }
    }

    /// The notary server for `host`, as docker chooses it: `DOCKER_CONTENT_TRUST_SERVER` if
    /// set (an `https://host[:port]` URL, nothing more), Docker Hub's notary for `docker.io`,
    /// else the registry host itself (where ACR serves trust data). TLS follows the
    /// *registry*'s rule, as docker's `GetNotaryRepository` does.
    pub fn notary(
        env_value: Option<&str>,
        host: &RegistryHost,
        acr: bool,
    ) -> Result<Self, EndpointError> {
        let tls = Self::tls_for(host, acr);
        let server = match env_value.filter(|v| !v.is_empty()) {
            Some(v) => Self::server_host(v, crate::notary::ENV_TRUST_SERVER)?,
            None if host.is_docker_hub() => {
                RegistryHost::parse(DOCKER_HUB_NOTARY).expect("static host parses")
            }
            None => host.clone(),
        };
        Ok(Endpoint {
            base: base_url("https", &server),
            tls_key: server.text.clone(),
            tls,
            acr,
        })
    }

    /// Checks a server URL from the environment: `https`, a valid host and optional port,
    /// no userinfo, path (a lone `/` is fine), query or fragment. Returns its host.
    pub fn server_host(value: &str, var: &'static str) -> Result<RegistryHost, EndpointError> {
        let refuse = |why| EndpointError::BadServerUrl {
            var,
            value: Url::parse(value)
                .map(|u| super::redact(&u))
                .unwrap_or_else(|_| "<not a URL>".into()),
            why,
        };
        let url = Url::parse(value).map_err(|_| refuse("it is not a URL"))?;
        if url.scheme() != "https" {
            return Err(refuse("valid https URL required for trust server"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it carries a user name or password"));
        }
        if url.query().is_some() || value.contains('?') {
            return Err(refuse("it has a query"));
        }
        if url.fragment().is_some() || value.contains('#') {
            return Err(refuse("it has a fragment"));
        }
        if url.path() != "/" {
            return Err(refuse("it has a path"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(h) => h.to_string(),
            None => return Err(refuse("it has no host")),
        };
        let text = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        RegistryHost::parse(&text).map_err(|_| refuse("its host is not a valid host name"))
    }

    fn tls_for(registry: &RegistryHost, acr: bool) -> Tls {
        if registry.is_loopback() && !acr {
            Tls::SkipVerifyLoopback
        } else {
            Tls::Verify
        }
    }

    /// The same server over plain HTTP: docker's fallback for a loopback registry that does
    /// not speak TLS. `None` where the fallback is not allowed (not loopback, or ACR).
    pub fn plain_http_fallback(&self) -> Option<Self> {
        if self.tls != Tls::SkipVerifyLoopback {
            return None;
        }
        let mut base = self.base.clone();
        base.set_scheme("http").ok()?;
        Some(Endpoint {
            base,
            ..self.clone()
        })
    }

    /// The base URL, `scheme://host[:port]/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The origin (`scheme://host[:port]`) for messages and same-origin checks.
    pub fn origin(&self) -> url::Origin {
        self.base.origin()
    }

    /// The URL of `path` under the base: each `/`-separated part becomes one path segment,
    /// percent-encoded as needed, so no part can add a query, a fragment or another host.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.clear();
            segs.extend(path.split('/'));
        }
        url
    }

    /// The key of docker's `<config>/tls/<host:port>/` directory for this server.
    pub fn tls_dir_key(&self) -> &str {
        &self.tls_key
    }

    /// Whether certificates are checked.
    pub fn tls(&self) -> Tls {
        self.tls
    }

    /// Whether this is an ACR login server (or the notary server of one).
    pub fn is_acr(&self) -> bool {
        self.acr
    }

    /// An HTTP client for this server, with docker's CA and client-certificate directory.
    pub fn client(&self, config_dir: &Path) -> Result<reqwest::Client, super::HttpError> {
        super::client_for(config_dir, self)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> RegistryHost {
        RegistryHost::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn hosts_follow_dockers_domain_grammar() {
        for ok in [
            "r.io",
            "127.0.0.1:5000",
            "[::1]:5000",
            "[2001:db8::1]",
            "localhost",
            "Foo",
            "xn--n3h.com:18080",
            "sub-dom1.foo.com",
        ] {
            assert_eq!(host(ok).as_str(), ok);
        }
        for bad in [
            "",
            "localhost#.azurecr.io",
            "user@r.io",
            "r.io/x",
            "r.io?x",
            "r.io:",
            "r.io:x",
            "-r.io",
            "r-.io",
            "r..io",
            "r.io.",
            "[fe80::1%eth0]",
            "[2001:db8:3:4::192.0.2.33]",
            "[::1",
            "fc00::1:5000",
            "r .io",
            "é.io",
            "1.2.3.999",
        ] {
            assert!(
                matches!(RegistryHost::parse(bad), Err(EndpointError::BadHost { .. })),
                "{bad:?} must be refused as a host"
            );
        }
        for bad in ["r.io:0", "r.io:65536", "r.io:99999999999999999999"] {
            assert!(
                matches!(RegistryHost::parse(bad), Err(EndpointError::BadPort { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn acr_is_decided_on_the_parsed_host() {
        assert!(host("contoso.azurecr.io").is_acr(&[]));
        assert!(host("Contoso.AzureCR.cn").is_acr(&[]));
        assert!(host("contoso.azurecr.us:443").is_acr(&[]));
        assert!(!host("azurecr.io").is_acr(&[]));
        assert!(!host("azurecr.io.evil.com").is_acr(&[]));
        assert!(!host("contoso.azurecr.io.evil.com").is_acr(&[]));
        assert!(!host("127.0.0.1:5000").is_acr(&[]));
        assert!(host("127.0.0.1:5000").is_acr(&["127.0.0.1:5000".into()]));
        assert!(!host("127.0.0.1:5001").is_acr(&["127.0.0.1:5000".into()]));
        assert!(!host("127.0.0.1").is_acr(&["127.0.0.1:5000".into()]));
        // A malformed setting matches nothing.
        assert!(!host("localhost").is_acr(&["localhost#.azurecr.io".into()]));
    }

    #[test]
    fn loopback_registries_skip_verification_unless_they_are_acr() {
        for h in [
            "127.0.0.1:5000",
            "127.8.9.1",
            "localhost:5000",
            "[::1]:5000",
        ] {
            let h = host(h);
            assert!(h.is_loopback());
            assert_eq!(Endpoint::registry(&h, false).tls(), Tls::SkipVerifyLoopback);
            assert_eq!(Endpoint::registry(&h, true).tls(), Tls::Verify);
            assert_eq!(Endpoint::notary(None, &h, true).unwrap().tls(), Tls::Verify);
            assert!(Endpoint::registry(&h, true).plain_http_fallback().is_none());
        }
        for h in ["myreg.azurecr.io", "10.0.0.1:5000", "localhost.evil.com"] {
            let h = host(h);
            assert!(!h.is_loopback());
            assert_eq!(Endpoint::registry(&h, false).tls(), Tls::Verify);
        }
    }

    #[test]
    fn urls_are_built_from_segments_and_keep_their_host() {
        let e = Endpoint::registry(&host("r.io:5000"), false);
        assert_eq!(e.to_string(), "https://r.io:5000");
        assert_eq!(
            e.url("v2/team/app/manifests/v1").as_str(),
            "https://r.io:5000/v2/team/app/manifests/v1"
        );
        // A hostile part stays a path segment.
        let u = e.url("v2/x?y#z/@evil.com");
        assert_eq!(u.host_str(), Some("r.io"));
        assert_eq!((u.query(), u.fragment()), (None, None));
        assert_eq!(
            Endpoint::registry(&host("[::1]:5000"), false)
                .url("v2/")
                .as_str(),
            "https://[::1]:5000/v2/"
        );
        assert_eq!(e.tls_dir_key(), "r.io:5000");
        let plain = Endpoint::registry(&host("127.0.0.1:5000"), false)
            .plain_http_fallback()
            .unwrap();
        assert_eq!(plain.url("v2/").as_str(), "http://127.0.0.1:5000/v2/");
    }

    #[test]
    fn docker_hub_uses_its_api_and_notary_hosts() {
        let hub = host("docker.io");
        assert_eq!(
            Endpoint::registry(&hub, false).to_string(),
            "https://registry-1.docker.io"
        );
        assert_eq!(
            Endpoint::notary(None, &hub, false).unwrap().to_string(),
            "https://notary.docker.io"
        );
    }

    #[test]
    fn trust_server_url_must_be_bare_https() {
        let h = host("r.io");
        let e = Endpoint::notary(Some("https://notary.example.com:4443/"), &h, false).unwrap();
        assert_eq!(e.to_string(), "https://notary.example.com:4443");
        assert_eq!(e.tls_dir_key(), "notary.example.com:4443");
        assert_eq!(
            Endpoint::notary(Some(""), &h, false).unwrap().to_string(),
            "https://r.io"
        );
        for (value, why) in [
            ("http://notary.example.com", "valid https URL required"),
            (
                "https://user:pw@notary.example.com",
                "user name or password",
            ),
            ("https://notary.example.com?x=1", "query"),
            ("https://notary.example.com#frag", "fragment"),
            ("https://notary.example.com/prefix", "path"),
            ("not a url", "not a URL"),
        ] {
            let err = Endpoint::notary(Some(value), &h, false).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(why), "{value}: {text}");
            assert!(!text.contains("pw@"), "userinfo leaked: {text}");
        }
    }
}
