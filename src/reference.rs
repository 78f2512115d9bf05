//! Image references as docker reads them: `[host[:port]/]path[:tag]`, where the first component is
//! a host only if it has a `.` or `:` or is `localhost`; otherwise the image is on Docker Hub.
//! The Notary GUN is the fully qualified repository name (`docker.io/library/alpine`,
//! `myreg.azurecr.io/team/app`).

use std::fmt;

/// Docker Hub's registry host in GUNs.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed `IMAGE[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host[:port].
    pub registry: String,
    /// Repository path within the registry.
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
}

/// A reference that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    input: String,
    reason: &'static str,
}

impl ImageRef {
    /// Parses `IMAGE[:TAG]`. Digests (`@sha256:…`) are refused: trust works on tags.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.contains('@') {
            return Err(err("a digest reference needs no trust data; use IMAGE:TAG"));
        }
        let (first, rest) = match input.split_once('/') {
            Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => (Some(f), r),
            _ => (None, input),
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (rest, None),
        };
        if path.is_empty()
            || path.split('/').any(|c| c.is_empty())
            || !path
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        {
            return Err(err(
                "repository names use lower-case letters, digits and . _ - /",
            ));
        }
        if let Some(t) = tag
            && (t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                || t.starts_with(['.', '-']))
        {
            return Err(err(
                "tags use letters, digits, . _ - and at most 128 characters",
            ));
        }
        let (registry, repository) = match first {
            Some(host) => (host.to_string(), path.to_string()),
            None if path.contains('/') => (DOCKER_HUB.to_string(), path.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{path}")),
        };
        Ok(ImageRef {
            registry,
            repository,
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

    #[test]
    fn registry_host_is_detected_as_docker_does() {
        let r = ImageRef::parse("myreg.azurecr.io/team/app:v1").unwrap();
        assert_eq!(r.gun(), "myreg.azurecr.io/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r = ImageRef::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!((r.registry.as_str(), r.tag), ("127.0.0.1:5000", None));
        let r = ImageRef::parse("alpine:3").unwrap();
        assert_eq!(r.gun(), "docker.io/library/alpine");
        let r = ImageRef::parse("me/app").unwrap();
        assert_eq!(r.gun(), "docker.io/me/app");
        let r = ImageRef::parse("localhost/app:x").unwrap();
        assert_eq!(r.registry, "localhost");
    }

    #[test]
    fn bad_references_are_refused_with_a_reason() {
        assert!(ImageRef::parse("Upper/case").is_err());
        assert!(ImageRef::parse("r.io/app@sha256:00").is_err());
        assert!(ImageRef::parse("r.io/app:").is_err());
        assert!(ImageRef::parse("r.io//app").is_err());
    }
}
