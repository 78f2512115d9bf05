//! `--platform os/arch[/variant]`: what the user asked for, and whether the image the engine
//! pulled is that platform.

/// A platform as docker spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`
    pub os: String,
    /// e.g. `arm64`
    pub architecture: String,
    /// e.g. `v8`
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        // Passed to the engine in a query and compared with the image's config: nothing but
        // docker's platform characters is accepted.
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(format!(
                "{s:?} is not a platform: give os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7"
            ));
        }
        let lower = |p: &str| p.to_ascii_lowercase();
        Ok(Platform {
            os: lower(parts[0]),
            architecture: lower(parts[1]),
            variant: parts.get(2).map(|v| lower(v)),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Whether an image of `os`/`architecture`/`variant` is this platform. Without a variant
    /// asked for, any variant is (as docker: `linux/arm64` takes `linux/arm64/v8`).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        os.eq_ignore_ascii_case(&self.os)
            && architecture.eq_ignore_ascii_case(&self.architecture)
            && self
                .variant
                .as_deref()
                .is_none_or(|v| variant.is_some_and(|got| got.eq_ignore_ascii_case(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_as_docker_spells_them() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        let p: Platform = "Linux/AMD64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/amd64&x=1",
            "linux/a b",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_variant_must_match_only_when_asked_for() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "arm64", None));
        assert!(!arm64.matches("linux", "amd64", None));
        assert!(!arm64.matches("windows", "arm64", None));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(v7.matches("linux", "arm", Some("v7")));
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert!(!v7.matches("linux", "arm", None));
    }
}
