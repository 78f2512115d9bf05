//! Image references as docker reads them (distribution/reference `ParseNormalizedNamed`):
//! `[host[:port]/]path[:tag]`. The first component is a host only if it has a `.` or `:`, is
//! `localhost`, or has upper case; otherwise the image is on Docker Hub. The Notary GUN is the
//! fully qualified repository name (`docker.io/library/alpine`, `myreg.azurecr.io/team/app`).
//!
//! The grammar is implemented by hand, without regexes, and checked against a table taken from
//! docker's own tests (`reference_test.go`, `normalize_test.go`) below. Where a token may be
//! sent depends on the host parsed here, so anything docker would not accept is refused.

use std::fmt;

use crate::registry::endpoint::RegistryHost;

pub use crate::registry::endpoint::DOCKER_HUB;

/// Docker's limit on `host/path` (distribution/reference `NameTotalLengthMax`).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed `IMAGE[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host[:port].
    pub registry: RegistryHost,
    /// Repository path within the registry.
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
}

/// Why a reference is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceProblem {
    /// Nothing was given.
    Empty,
    /// Not `[host[:port]/]path[:tag]` in docker's grammar.
    InvalidFormat,
    /// The repository path has upper-case letters.
    Uppercase,
    /// `host/path` is longer than 255 characters.
    NameTooLong,
    /// A 64-character hex string, which docker reads as an image ID.
    HexIdentifier,
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    InvalidTag,
    /// The host's port is not 1-65535.
    BadPort,
    /// A well-formed `@digest` reference: trust data maps tags, not digests.
    Digest,
}

impl fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReferenceProblem::Empty => "repository name must have at least one component",
            ReferenceProblem::InvalidFormat => {
                "invalid reference format: use [HOST[:PORT]/]NAME[:TAG] with a DNS name or IP address as HOST"
            }
            ReferenceProblem::Uppercase => {
                "invalid reference format: repository name must be lowercase"
            }
            ReferenceProblem::NameTooLong => {
                "repository name must not be more than 255 characters"
            }
            ReferenceProblem::HexIdentifier => {
                "invalid repository name, cannot specify 64-byte hexadecimal strings"
            }
            ReferenceProblem::InvalidTag => {
                "invalid reference format: tags use letters, digits, _ . - (not first) and at most 128 characters"
            }
            ReferenceProblem::BadPort => {
                "invalid reference format: the registry port must be a number from 1 to 65535"
            }
            ReferenceProblem::Digest => "a digest reference needs no trust data; use IMAGE:TAG",
        })
    }
}

/// A reference that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?}: {problem}")]
pub struct ReferenceError {
    input: String,
    problem: ReferenceProblem,
}

impl ReferenceError {
    /// Why it was refused.
    pub fn problem(&self) -> ReferenceProblem {
        self.problem
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(c: &[u8]) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < c.len() && alnum(c[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == c.len() {
            return true;
        }
        match c[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if c.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while c.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &[u8]) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !t.is_empty()
        && t.len() <= 128
        && word(&t[0])
        && t[1..].iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest(d: &[u8]) -> bool {
    let Some(colon) = d.iter().position(|b| *b == b':') else {
        return false;
    };
    let (alg, hex) = (&d[..colon], &d[colon + 1..]);
    let alg_ok = alg
        .split(|b| b"-_+.".contains(b))
        .all(|part| !part.is_empty() && part[0].is_ascii_alphabetic())
        && alg
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(b));
    alg_ok && hex.len() >= 32 && hex.iter().all(u8::is_ascii_hexdigit)
}

impl ImageRef {
    /// Parses `IMAGE[:TAG]` as docker does. Digests (`@sha256:…`) are refused: trust works on
    /// tags.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |problem| ReferenceError {
            input: input.to_string(),
            problem,
        };
        if input.is_empty() {
            return Err(err(ReferenceProblem::Empty));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(err(ReferenceProblem::HexIdentifier));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        let parsed = Self::parse_name_tag(name_tag).map_err(err)?;
        match digest {
            None => Ok(parsed),
            Some(d) if is_digest(d.as_bytes()) => Err(err(ReferenceProblem::Digest)),
            Some(_) => Err(err(ReferenceProblem::InvalidFormat)),
        }
    }

    fn parse_name_tag(s: &str) -> Result<Self, ReferenceProblem> {
        // splitDockerDomain: is the first component a host?
        let (domain, remainder) = match s.split_once('/') {
            None => (DOCKER_HUB, None),
            Some(("localhost", rest)) => ("localhost", Some(rest)),
            Some(("index.docker.io", rest)) => (DOCKER_HUB, Some(rest)),
            Some((first, rest))
                if first.contains(['.', ':']) || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first, Some(rest))
            }
            Some(_) => (DOCKER_HUB, None),
        };
        let remainder = remainder.unwrap_or(s);
        let remainder = if domain == DOCKER_HUB && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_string()
        };
        let (path, tag) = match remainder.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (remainder.as_str(), None),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceProblem::Uppercase);
        }
        // Docker would read a name whose first part is not a valid host as a path with no
        // host at all; trust needs a host, so that is refused here.
        let registry = RegistryHost::parse(domain).map_err(|e| match e {
            crate::registry::endpoint::EndpointError::BadPort { .. } => ReferenceProblem::BadPort,
            _ => ReferenceProblem::InvalidFormat,
        })?;
        if !path.split('/').all(|c| is_path_component(c.as_bytes())) {
            return Err(ReferenceProblem::InvalidFormat);
        }
        if let Some(t) = tag
            && !is_tag(t.as_bytes())
        {
            return Err(if t.contains('/') {
                ReferenceProblem::InvalidFormat
            } else {
                ReferenceProblem::InvalidTag
            });
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceProblem::NameTooLong);
        }
        Ok(ImageRef {
            registry,
            repository: path.to_string(),
            tag: tag.map(str::to_string),
        })
    }

    /// The Notary GUN: `<registry>/<repository>`.
    pub fn gun(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.gun())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReferenceProblem::*;

    const HEX64: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

    fn ok(input: &str) -> ImageRef {
        ImageRef::parse(input).unwrap_or_else(|e| panic!("{input:?} must parse: {e}"))
    }

    /// References docker accepts (distribution/reference `reference_test.go` TestReferenceParse,
    /// `normalize_test.go` TestValidateReferenceName, TestValidateRemoteName,
    /// TestParseRepositoryInfo, TestNormalizedSplitHostname), with the GUN and tag docker's
    /// `ParseNormalizedNamed` gives. Cases with a digest are in the refused table: trust is
    /// for tags.
    #[test]
    fn accepted_references_match_dockers_tests() {
        let hub_hex = format!("docker.io/{HEX64}");
        let hub_hex_gun = format!("docker.io/library/{HEX64}");
        let cases: Vec<(&str, &str, Option<&str>)> = vec![
            ("test_com", "docker.io/library/test_com", None),
            ("test.com:tag", "docker.io/library/test.com", Some("tag")),
            ("test.com:5000", "docker.io/library/test.com", Some("5000")),
            ("test.com/repo:tag", "test.com/repo", Some("tag")),
            ("test:5000/repo", "test:5000/repo", None),
            ("test:5000/repo:tag", "test:5000/repo", Some("tag")),
            (
                "lowercase:Uppercase",
                "docker.io/library/lowercase",
                Some("Uppercase"),
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com/bar/baz/quux",
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
                "sub-dom1.foo.com/bar/baz/quux",
                Some("some-long-tag"),
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io/test.example.com/my-app",
                Some("test.example.com"),
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com/myimage",
                Some("xn--n3h.com"),
            ),
            (
                "foo_bar.com:8080",
                "docker.io/library/foo_bar.com",
                Some("8080"),
            ),
            (
                "foo/foo_bar.com:8080",
                "docker.io/foo/foo_bar.com",
                Some("8080"),
            ),
            ("192.168.1.1", "docker.io/library/192.168.1.1", None),
            (
                "192.168.1.1:tag",
                "docker.io/library/192.168.1.1",
                Some("tag"),
            ),
            (
                "192.168.1.1:5000",
                "docker.io/library/192.168.1.1",
                Some("5000"),
            ),
            ("192.168.1.1/repo", "192.168.1.1/repo", None),
            ("192.168.1.1:5000/repo", "192.168.1.1:5000/repo", None),
            (
                "192.168.1.1:5000/repo:5050",
                "192.168.1.1:5000/repo",
                Some("5050"),
            ),
            ("[2001:db8::1]/repo", "[2001:db8::1]/repo", None),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag",
                "[2001:db8:1:2:3:4:5:6]/repo",
                Some("tag"),
            ),
            ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo", None),
            (
                "[2001:db8::1]:5000/repo:tag",
                "[2001:db8::1]:5000/repo",
                Some("tag"),
            ),
            ("[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo", None),
            ("[::1]:5000/repo", "[::1]:5000/repo", None),
            ("docker/docker", "docker.io/docker/docker", None),
            ("library/debian", "docker.io/library/debian", None),
            ("debian", "docker.io/library/debian", None),
            ("docker.io/docker/docker", "docker.io/docker/docker", None),
            ("docker.io/library/debian", "docker.io/library/debian", None),
            ("docker.io/debian", "docker.io/library/debian", None),
            (
                "index.docker.io/docker/docker",
                "docker.io/docker/docker",
                None,
            ),
            (
                "index.docker.io/library/debian",
                "docker.io/library/debian",
                None,
            ),
            ("index.docker.io/debian", "docker.io/library/debian", None),
            (
                "127.0.0.1:5000/docker/docker",
                "127.0.0.1:5000/docker/docker",
                None,
            ),
            (
                "127.0.0.1:5000/library/debian",
                "127.0.0.1:5000/library/debian",
                None,
            ),
            ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian", None),
            ("192.168.0.1", "docker.io/library/192.168.0.1", None),
            (
                "192.168.0.1:80",
                "docker.io/library/192.168.0.1",
                Some("80"),
            ),
            ("192.168.0.1:8/debian", "192.168.0.1:8/debian", None),
            ("192.168.0.2:25000/debian", "192.168.0.2:25000/debian", None),
            (
                "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                None,
            ),
            ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker", None),
            (
                "[fc00::1]:5000/docker/docker",
                "[fc00::1]:5000/docker/docker",
                None,
            ),
            (
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                None,
            ),
            (&hub_hex, &hub_hex_gun, None),
            ("Docker/docker", "Docker/docker", None),
            ("DOCKER/docker", "DOCKER/docker", None),
            ("docker-rules/docker", "docker.io/docker-rules/docker", None),
            (
                "docker---rules/docker",
                "docker.io/docker---rules/docker",
                None,
            ),
            ("d/docker", "docker.io/d/docker", None),
            ("jess/t", "docker.io/jess/t", None),
            ("dock__er/docker", "docker.io/dock__er/docker", None),
            (
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                None,
            ),
            (
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                None,
            ),
            (
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                None,
            ),
            ("library/foo/bar", "docker.io/library/foo/bar", None),
            ("Foo/bar", "Foo/bar", None),
            ("test-com:8080/foo", "test-com:8080/foo", None),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", None),
            ("localhost/app:x", "localhost/app", Some("x")),
            ("localhost:5000/app", "localhost:5000/app", None),
            (
                "myreg.azurecr.io/team/app:v1",
                "myreg.azurecr.io/team/app",
                Some("v1"),
            ),
            (
                "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                None,
            ),
        ];
        for (input, gun, tag) in cases {
            let r = ok(input);
            assert_eq!((r.gun().as_str(), r.tag.as_deref()), (gun, tag), "{input}");
            // What we print parses back to the same reference.
            assert_eq!(ok(&r.to_string()), r, "{input} re-rendered as {r}");
        }
    }

    /// References docker refuses (the same test files), and the reason we give. A digest is
    /// refused by us although docker accepts it: trust data maps tags, not digests.
    #[test]
    fn bad_references_are_refused_with_a_reason() {
        let too_long = format!("{}a:tag", "a/".repeat(128));
        // Accepted by docker's un-normalized `Parse` (host "a"); normalized, it is
        // `docker.io/a/a/…`, 265 characters.
        let long_on_hub = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        let ns_too_long = format!("{}/docker", "this_is_not_a_valid_namespace".repeat(9));
        let digest = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let with_digest = format!("test:5000/repo@{digest}");
        let tag_and_digest = format!("test:5000/repo:tag@{digest}");
        let v6_digest = format!("[2001:db8::1]:5000/repo@{digest}");
        let only_digest = format!("@{digest}");
        let cases: Vec<(&str, ReferenceProblem)> = vec![
            ("", Empty),
            (":justtag", InvalidFormat),
            (&only_digest, InvalidFormat),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff", Digest),
            (
                "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                Digest,
            ),
            (&with_digest, Digest),
            (&tag_and_digest, Digest),
            (&v6_digest, Digest),
            ("r.io/app@sha256:00", InvalidFormat),
            ("Uppercase:tag", Uppercase),
            ("test:5000/Uppercase/lowercase:tag", Uppercase),
            ("upper/Case", Uppercase),
            (&too_long, NameTooLong),
            (&long_on_hub, NameTooLong),
            ("aa/asdf$$^/aa", InvalidFormat),
            ("[2001:db8::1]", InvalidFormat),
            ("[2001:db8::1]:5000", InvalidFormat),
            ("[2001:db8::1]:tag", InvalidFormat),
            ("[fe80::1%eth0]:5000/repo", InvalidFormat),
            ("[fe80::1%@invalidzone]:5000/repo", InvalidFormat),
            ("https://github.com/docker/docker", InvalidFormat),
            ("docker/Docker", Uppercase),
            ("-docker", InvalidFormat),
            ("-docker/docker", InvalidFormat),
            ("-docker.io/docker/docker", InvalidFormat),
            ("docker///docker", InvalidFormat),
            ("docker.io/docker/Docker", Uppercase),
            ("docker.io/docker///docker", InvalidFormat),
            ("[fc00::1]", InvalidFormat),
            ("[fc00::1]:5000", InvalidFormat),
            ("fc00::1:5000/debian", InvalidFormat),
            ("[fe80::1%eth0]:5000/debian", InvalidFormat),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian", InvalidFormat),
            (HEX64, HexIdentifier),
            ("docker-/docker", InvalidFormat),
            ("-docker-/docker", InvalidFormat),
            ("____/____", InvalidFormat),
            ("_docker/_docker", InvalidFormat),
            ("dock..er/docker", InvalidFormat),
            ("dock_.er/docker", InvalidFormat),
            ("dock-.er/docker", InvalidFormat),
            ("docker/", InvalidFormat),
            (&ns_too_long, NameTooLong),
            // The review's attack: a host that is not a host (#8 item 2).
            ("localhost#.azurecr.io/app:v1", InvalidFormat),
            ("evil.com?.azurecr.io/app:v1", InvalidFormat),
            ("user@evil.com/x.azurecr.io/app", InvalidFormat),
            ("r.io/app:", InvalidTag),
            ("r.io/app:-x", InvalidTag),
            ("r.io//app", InvalidFormat),
            ("r.io:99999/app", BadPort),
            ("r.io:0/app", BadPort),
            ("r.io:/app", InvalidFormat),
            (" r.io/app", InvalidFormat),
            ("r.io/app\n", InvalidFormat),
            ("r.io/äpp", InvalidFormat),
            ("a_b.c/d", InvalidFormat),
        ];
        for (input, problem) in cases {
            match ImageRef::parse(input) {
                Ok(r) => panic!("{input:?} must be refused, parsed as {r}"),
                Err(e) => assert_eq!(e.problem(), problem, "{input:?}: {e}"),
            }
        }
        let e = ImageRef::parse("localhost#.azurecr.io/app:v1").unwrap_err();
        assert!(e.to_string().contains("invalid reference format"), "{e}");
    }

    /// The parser's invariants over many mutations of the tables' inputs (the fuzz target in
    /// fuzz/ checks the same on random input): no panic; an accepted reference re-renders to a
    /// string that parses to the same value; the host never holds a character that could
    /// change where a URL goes.
    #[test]
    fn mutated_references_keep_the_parser_invariants() {
        let seeds = [
            "myreg.azurecr.io/team/app:v1",
            "[::1]:5000/repo:tag",
            "localhost/app",
            "Foo/bar",
            "docker.io/library/debian:12",
        ];
        let inserts = [
            '#', '/', '@', '?', ':', '.', '[', ']', 'A', '_', '-', '%', 'é', ' ',
        ];
        let mut checked = 0;
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for i in 0..=chars.len() {
                let mut variants = Vec::new();
                for c in inserts {
                    let mut v = chars.clone();
                    v.insert(i, c);
                    variants.push(v);
                }
                if i < chars.len() {
                    let mut v = chars.clone();
                    v.remove(i);
                    variants.push(v);
                }
                for v in variants {
                    let s: String = v.into_iter().collect();
                    check_invariants(&s);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    fn check_invariants(input: &str) {
        let Ok(r) = ImageRef::parse(input) else {
            return;
        };
        let host = r.registry.as_str();
        assert!(
            !host.contains(['#', '/', '@', '?', ' ', '%', '\\']),
            "{input:?} gave host {host:?}"
        );
        assert_eq!(
            ImageRef::parse(&r.to_string()).as_ref(),
            Ok(&r),
            "{input:?}"
        );
        if r.registry.is_acr(&[]) {
            assert!(
                ["azurecr.io", "azurecr.cn", "azurecr.us"]
                    .iter()
                    .any(|s| r.registry.name().ends_with(s)),
                "{input:?}"
            );
        }
    }
}
