//! The OCI trust policy (`trustpolicy.oci.json`, version 1.0), read and validated by notation's
//! rules (spec "Trust Policy", notation-go `verifier/trustpolicy`): one statement per scope,
//! scopes are exact `registry/repository` or the single global `*`, stores are
//! `ca|signingAuthority|tsa:<name>`, identities are `*` or `x509.subject: <DN with C, ST, O>`
//! that do not overlap, the level is strict/permissive/audit/skip with overrides (never of
//! integrity). Also the writer behind `policy init`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reference::ImageRef;

/// The largest policy file read.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// The only policy version notation knows.
pub const VERSION: &str = "1.0";

/// Why a trust policy is refused, or selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or the wrong shape.
    #[error("the trust policy is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// A rule of the document or of a statement.
    #[error("the trust policy is invalid: {0}")]
    Invalid(String),
    /// No statement applies to the repository.
    #[error(
        "no trust policy statement applies to {0}: add one with `docker trustacr policy init {0} --cert FILE`, or a global (\"*\") statement"
    )]
    NoStatement(String),
    /// `policy init` would replace a statement.
    #[error(
        "the trust policy already has a statement for {scope} (\"{name}\"); pass --force to replace it"
    )]
    Exists {
        /// The scope.
        scope: String,
        /// The statement's name.
        name: String,
    },
}

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(msg.into())
}

/// The document as written (field names as notation spells them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Must be "1.0".
    #[serde(default)]
    pub version: String,
    /// The statements.
    #[serde(default)]
    pub trust_policies: Vec<StatementJson>,
}

/// One statement as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementJson {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// Repositories (`registry/repo`) or `*`.
    #[serde(default)]
    pub registry_scopes: Vec<String>,
    /// Level and overrides.
    pub signature_verification: SignatureVerificationJson,
    /// `type:name` stores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_stores: Vec<String>,
    /// `*` or `x509.subject: ...`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_identities: Vec<String>,
}

/// `signatureVerification` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureVerificationJson {
    /// strict, permissive, audit or skip.
    #[serde(default)]
    pub level: String,
    /// Per-check overrides.
    #[serde(
        default,
        rename = "override",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub overrides: BTreeMap<String, String>,
    /// `always` (default) or `afterCertExpiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_timestamp: Option<String>,
}

/// What a check's failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fails the verification.
    Enforce,
    /// Logged; the verification goes on.
    Log,
    /// Not performed.
    Skip,
}

/// The verification level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Everything enforced.
    Strict,
    /// Integrity and authenticity enforced, the rest logged.
    Permissive,
    /// Integrity enforced, the rest logged.
    Audit,
    /// No verification at all.
    Skip,
}

/// The checks a level (plus overrides) governs. Integrity is always enforced unless skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// Integrity.
    pub integrity: Action,
    /// Authenticity, including trusted identity.
    pub authenticity: Action,
    /// Authentic timestamp (certificate validity at signing or now).
    pub authentic_timestamp: Action,
    /// Signature expiry.
    pub expiry: Action,
    /// Revocation.
    pub revocation: Action,
}

impl Level {
    /// Notation's table (spec "Signature Verification details").
    pub fn actions(self) -> Actions {
        use Action::*;
        let (i, a, t, e, r) = match self {
            Level::Strict => (Enforce, Enforce, Enforce, Enforce, Enforce),
            Level::Permissive => (Enforce, Enforce, Log, Log, Log),
            Level::Audit => (Enforce, Log, Log, Log, Log),
            Level::Skip => (Skip, Skip, Skip, Skip, Skip),
        };
        Actions {
            integrity: i,
            authenticity: a,
            authentic_timestamp: t,
            expiry: e,
            revocation: r,
        }
    }
}

/// Trust store types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreType {
    /// `ca`: roots and self-signed leaves for `notary.x509`.
    Ca,
    /// `signingAuthority`: for `notary.x509.signingAuthority`.
    SigningAuthority,
    /// `tsa`: RFC 3161 timestamping roots.
    Tsa,
}

impl StoreType {
    /// The directory (and policy prefix) name.
    pub fn dir_name(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }
}

/// The trusted identities of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identities {
    /// `*`: any leaf that chains to the stores.
    Any,
    /// Leaves whose subject contains one of these DNs (attribute → value).
    Subjects(Vec<(String, BTreeMap<String, String>)>),
}

/// A validated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Name.
    pub name: String,
    /// `None` for the global `*`, else the exact repositories.
    pub scopes: Option<Vec<String>>,
    /// Level.
    pub level: Level,
    /// Level plus overrides.
    pub actions: Actions,
    /// Verify timestamps only once a certificate expired (`afterCertExpiry`).
    pub verify_timestamp_after_cert_expiry: bool,
    /// `(type, name)` stores.
    pub trust_stores: Vec<(StoreType, String)>,
    /// Trusted identities.
    pub identities: Identities,
}

/// A validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Statements in file order.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a `trustpolicy.oci.json`.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(invalid(format!(
                "the file is {} bytes, over the {MAX_POLICY_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::validate(&doc)
    }

    /// Validates a document by notation's rules.
    pub fn validate(doc: &Document) -> Result<Self, PolicyError> {
        if doc.version.is_empty() {
            return Err(invalid("the document has no version"));
        }
        if doc.version != VERSION {
            return Err(invalid(format!(
                "version {:?} is not supported (only \"1.0\")",
                doc.version
            )));
        }
        if doc.trust_policies.is_empty() {
            return Err(invalid("the document has no trust policy statements"));
        }
        let mut names = std::collections::HashSet::new();
        let mut scopes: BTreeMap<String, String> = BTreeMap::new();
        let mut global = None::<String>;
        let mut statements = Vec::new();
        for s in &doc.trust_policies {
            if s.name.is_empty() {
                return Err(invalid("a statement has no name"));
            }
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!(
                    "statement name {:?} is used more than once",
                    s.name
                )));
            }
            let st = validate_statement(s)?;
            match &st.scopes {
                None => {
                    if let Some(other) = &global {
                        return Err(invalid(format!(
                            "statements {other:?} and {:?} are both global (\"*\"); only one may be",
                            s.name
                        )));
                    }
                    global = Some(s.name.clone());
                }
                Some(list) => {
                    for scope in list {
                        if let Some(other) = scopes.insert(scope.clone(), s.name.clone()) {
                            return Err(invalid(format!(
                                "registry scope {scope:?} appears more than once (statements {other:?} and {:?})",
                                s.name
                            )));
                        }
                    }
                }
            }
            statements.push(st);
        }
        Ok(Policy { statements })
    }

    /// The statement for a repository (`registry/repository`): an exact scope first, then the
    /// global one, as notation selects.
    pub fn statement_for(&self, repository: &str) -> Result<&Statement, PolicyError> {
        self.statements
            .iter()
            .find(|s| {
                s.scopes
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|x| x == repository))
            })
            .or_else(|| self.statements.iter().find(|s| s.scopes.is_none()))
            .ok_or_else(|| PolicyError::NoStatement(repository.to_string()))
    }
}

fn validate_statement(s: &StatementJson) -> Result<Statement, PolicyError> {
    let name = &s.name;
    let sv = &s.signature_verification;
    let level = match sv.level.as_str() {
        "strict" => Level::Strict,
        "permissive" => Level::Permissive,
        "audit" => Level::Audit,
        "skip" => Level::Skip,
        "" => {
            return Err(invalid(format!(
                "statement {name:?} has no verification level"
            )));
        }
        other => {
            return Err(invalid(format!(
                "statement {name:?} has level {other:?}; use strict, permissive, audit or skip"
            )));
        }
    };
    let mut actions = level.actions();
    if level == Level::Skip && !sv.overrides.is_empty() {
        return Err(invalid(format!(
            "statement {name:?}: level skip cannot have overrides"
        )));
    }
    for (check, value) in &sv.overrides {
        let action = match value.as_str() {
            "enforce" => Action::Enforce,
            "log" => Action::Log,
            "skip" if check == "revocation" => Action::Skip,
            other => {
                return Err(invalid(format!(
                    "statement {name:?}: override {check:?} has action {other:?}; use enforce or log (or skip for revocation)"
                )));
            }
        };
        match check.as_str() {
            "authenticity" => actions.authenticity = action,
            "authenticTimestamp" => actions.authentic_timestamp = action,
            "expiry" => actions.expiry = action,
            "revocation" => actions.revocation = action,
            "integrity" => {
                return Err(invalid(format!(
                    "statement {name:?}: integrity cannot be overridden"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "statement {name:?}: {other:?} is not a check that can be overridden"
                )));
            }
        }
    }
    let verify_timestamp_after_cert_expiry = match sv.verify_timestamp.as_deref() {
        None | Some("always") => false,
        Some("afterCertExpiry") => true,
        Some(other) => {
            return Err(invalid(format!(
                "statement {name:?}: verifyTimestamp {other:?} is not always or afterCertExpiry"
            )));
        }
    };
    let scopes = validate_scopes(name, &s.registry_scopes)?;
    if level == Level::Skip {
        if !s.trust_stores.is_empty() || !s.trusted_identities.is_empty() {
            return Err(invalid(format!(
                "statement {name:?}: level skip must have no trust stores and no trusted identities"
            )));
        }
        return Ok(Statement {
            name: name.clone(),
            scopes,
            level,
            actions,
            verify_timestamp_after_cert_expiry,
            trust_stores: Vec::new(),
            identities: Identities::Any,
        });
    }
    if s.trust_stores.is_empty() {
        return Err(invalid(format!("statement {name:?} has no trust stores")));
    }
    let trust_stores = s
        .trust_stores
        .iter()
        .map(|t| parse_store(name, t))
        .collect::<Result<Vec<_>, _>>()?;
    let identities = validate_identities(name, &s.trusted_identities)?;
    Ok(Statement {
        name: name.clone(),
        scopes,
        level,
        actions,
        verify_timestamp_after_cert_expiry,
        trust_stores,
        identities,
    })
}

fn validate_scopes(name: &str, scopes: &[String]) -> Result<Option<Vec<String>>, PolicyError> {
    if scopes.is_empty() {
        return Err(invalid(format!(
            "statement {name:?} has no registry scopes"
        )));
    }
    if scopes.iter().any(|s| s == "*") {
        if scopes.len() > 1 {
            return Err(invalid(format!(
                "statement {name:?}: the global scope \"*\" cannot be combined with other scopes"
            )));
        }
        return Ok(None);
    }
    let mut seen = std::collections::HashSet::new();
    for scope in scopes {
        if scope.contains('*') {
            return Err(invalid(format!(
                "statement {name:?}: registry scope {scope:?} has a wildcard; scopes are exact repositories or \"*\""
            )));
        }
        if !is_repository_scope(scope) {
            return Err(invalid(format!(
                "statement {name:?}: registry scope {scope:?} is not a repository (registry/repository, no tag or digest)"
            )));
        }
        if !seen.insert(scope.as_str()) {
            return Err(invalid(format!(
                "registry scope {scope:?} appears more than once in statement {name:?}"
            )));
        }
    }
    Ok(Some(scopes.to_vec()))
}

/// Whether `scope` is a fully qualified repository name with no tag or digest.
pub fn is_repository_scope(scope: &str) -> bool {
    scope.contains('/')
        && !scope.contains('@')
        && ImageRef::parse(scope).is_ok_and(|r| r.tag.is_none() && r.gun() == scope)
}

/// Whether a store name is one notation accepts (`[a-zA-Z0-9_.-]+`, not `.`/`..`).
pub fn is_store_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn parse_store(name: &str, value: &str) -> Result<(StoreType, String), PolicyError> {
    let Some((t, n)) = value.split_once(':') else {
        return Err(invalid(format!(
            "statement {name:?}: trust store {value:?} is not <type>:<name>"
        )));
    };
    let t = match t {
        "ca" => StoreType::Ca,
        "signingAuthority" => StoreType::SigningAuthority,
        "tsa" => StoreType::Tsa,
        other => {
            return Err(invalid(format!(
                "statement {name:?}: trust store type {other:?} is not ca, signingAuthority or tsa"
            )));
        }
    };
    if !is_store_name(n) {
        return Err(invalid(format!(
            "statement {name:?}: trust store name {n:?} must be letters, digits, '_', '.', '-'"
        )));
    }
    Ok((t, n.to_string()))
}

fn validate_identities(name: &str, ids: &[String]) -> Result<Identities, PolicyError> {
    if ids.is_empty() {
        return Err(invalid(format!(
            "statement {name:?} has no trusted identities (use \"*\" or \"x509.subject: ...\")"
        )));
    }
    if ids.iter().any(|i| i == "*") {
        if ids.len() > 1 {
            return Err(invalid(format!(
                "statement {name:?}: the wildcard identity \"*\" cannot be combined with others"
            )));
        }
        return Ok(Identities::Any);
    }
    let mut parsed = Vec::new();
    for id in ids {
        if id.is_empty() {
            return Err(invalid(format!(
                "statement {name:?} has an empty trusted identity"
            )));
        }
        let Some((kind, value)) = id.split_once(':') else {
            return Err(invalid(format!(
                "statement {name:?}: trusted identity {id:?} has no \"x509.subject:\" prefix"
            )));
        };
        if kind.trim() != "x509.subject" {
            return Err(invalid(format!(
                "statement {name:?}: trusted identity type {:?} is not supported (only x509.subject)",
                kind.trim()
            )));
        }
        let dn = parse_dn(value.trim())
            .map_err(|e| invalid(format!("statement {name:?}: trusted identity {id:?}: {e}")))?;
        parsed.push((id.clone(), dn));
    }
    for (i, (a, da)) in parsed.iter().enumerate() {
        for (j, (b, db)) in parsed.iter().enumerate() {
            if i != j && is_subset_dn(da, db) {
                return Err(invalid(format!(
                    "statement {name:?}: trusted identities {a:?} and {b:?} overlap"
                )));
            }
        }
    }
    Ok(Identities::Subjects(parsed))
}

/// Parses an RFC 4514 DN as notation does: single-valued RDNs, unique attribute types (`S` is
/// `ST`), escapes (`\,`, `\\`, `\XX` hex) honoured, and C, ST and O required.
pub fn parse_dn(dn: &str) -> Result<BTreeMap<String, String>, String> {
    if dn.contains("=#") {
        return Err("hex-encoded (=#) values are not supported".into());
    }
    let mut map = BTreeMap::new();
    for rdn in split_unescaped(dn, &[',', ';'])? {
        if split_unescaped(&rdn, &['+'])?.len() > 1 {
            return Err("multi-valued RDNs (+) are not supported".into());
        }
        let Some((t, v)) = rdn.split_once('=') else {
            return Err(format!("{rdn:?} is not type=value"));
        };
        let mut t = t.trim().to_string();
        if t.is_empty() {
            return Err(format!("{rdn:?} has no attribute type"));
        }
        if t == "S" {
            t = "ST".into();
        }
        let v = unescape(v.trim())?;
        if v.is_empty() {
            return Err(format!("attribute {t} has an empty value"));
        }
        if map.insert(t.clone(), v).is_some() {
            return Err(format!("attribute {t} appears more than once"));
        }
    }
    for required in ["C", "ST", "O"] {
        if !map.contains_key(required) {
            return Err(format!(
                "the DN has no {required}; it must contain C, ST (or S) and O"
            ));
        }
    }
    Ok(map)
}

/// Splits on unescaped separators, keeping escapes for [`unescape`].
fn split_unescaped(s: &str, seps: &[char]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            match chars.next() {
                Some(n) => cur.push(n),
                None => return Err("the DN ends with a lone backslash".into()),
            }
        } else if seps.contains(&c) {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    Ok(out)
}

fn unescape(v: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let next = *b.get(i + 1).ok_or("the DN ends with a lone backslash")?;
            if next.is_ascii_hexdigit() && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|e| e.to_string())?;
                bytes.push(u8::from_str_radix(h, 16).map_err(|e| e.to_string())?);
                i += 3;
            } else {
                bytes.push(next);
                i += 2;
            }
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".to_string())
}

/// Whether every attribute of `a` is in `b` with the same value (notation's subset match).
pub fn is_subset_dn(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

/// Adds (or with `force`, replaces) the statement for one repository in a policy document,
/// keeping every other statement as it was. `existing` is the current file, if any. The result
/// is validated before it is returned, so a write never produces a policy notation would reject.
pub fn upsert_statement(
    existing: Option<&[u8]>,
    statement: StatementJson,
    force: bool,
) -> Result<Vec<u8>, PolicyError> {
    let mut doc = match existing {
        Some(bytes) => {
            Policy::parse(bytes)?;
            serde_json::from_slice::<Document>(bytes)
                .map_err(|e| PolicyError::Json(e.to_string()))?
        }
        None => Document {
            version: VERSION.into(),
            trust_policies: Vec::new(),
        },
    };
    let scope = statement
        .registry_scopes
        .first()
        .cloned()
        .unwrap_or_default();
    if let Some(pos) = doc
        .trust_policies
        .iter()
        .position(|s| s.registry_scopes.contains(&scope))
    {
        let old = &doc.trust_policies[pos];
        if !force {
            return Err(PolicyError::Exists {
                scope,
                name: old.name.clone(),
            });
        }
        if old.registry_scopes.len() == 1 {
            doc.trust_policies.remove(pos);
        } else {
            doc.trust_policies[pos]
                .registry_scopes
                .retain(|s| s != &scope);
        }
    }
    // Names must stay unique: a replaced or foreign statement may already hold this one.
    let mut name = statement.name.clone();
    let mut n = 2;
    while doc.trust_policies.iter().any(|s| s.name == name) {
        name = format!("{}-{n}", statement.name);
        n += 1;
    }
    doc.trust_policies.push(StatementJson { name, ..statement });
    Policy::validate(&doc)?;
    let mut out = serde_json::to_vec_pretty(&doc).map_err(|e| PolicyError::Json(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(scope: &str) -> StatementJson {
        StatementJson {
            name: "app".into(),
            registry_scopes: vec![scope.into()],
            signature_verification: SignatureVerificationJson {
                level: "strict".into(),
                overrides: BTreeMap::new(),
                verify_timestamp: None,
            },
            trust_stores: vec!["ca:app".into()],
            trusted_identities: vec!["x509.subject: C=US, ST=WA, O=example, CN=app".into()],
        }
    }

    #[test]
    fn dn_parsing_follows_notation_rules() {
        let dn = parse_dn(r"C=US, S=WA, O=Acme\, Inc., CN=a\2cb").unwrap();
        assert_eq!(dn["ST"], "WA");
        assert_eq!(dn["O"], "Acme, Inc.");
        assert_eq!(dn["CN"], "a,b");
        assert!(parse_dn("C=US, ST=WA").is_err());
        assert!(parse_dn("C=US, ST=WA, O=a+OU=b").is_err());
        assert!(parse_dn("C=US, ST=WA, O=a, O=b").is_err());
        assert!(parse_dn("C=US, ST=WA, O=#0403").is_err());
    }

    #[test]
    fn the_repository_statement_wins_over_the_global_one() {
        let p = Policy::parse(br#"{"version":"1.0","trustPolicies":[
            {"name":"g","registryScopes":["*"],"signatureVerification":{"level":"audit"},"trustStores":["ca:x"],"trustedIdentities":["*"]},
            {"name":"r","registryScopes":["example.com/app"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}"#).unwrap();
        assert_eq!(p.statement_for("example.com/app").unwrap().name, "r");
        assert_eq!(p.statement_for("example.com/other").unwrap().name, "g");
        // Scopes are exact: a prefix does not select.
        assert_eq!(p.statement_for("example.com/app/sub").unwrap().name, "g");
    }

    #[test]
    fn a_policy_without_a_matching_statement_selects_nothing() {
        let p = Policy::parse(br#"{"version":"1.0","trustPolicies":[
            {"name":"r","registryScopes":["example.com/app"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}"#).unwrap();
        assert!(matches!(
            p.statement_for("example.com/other"),
            Err(PolicyError::NoStatement(_))
        ));
    }

    #[test]
    fn policy_init_refuses_to_replace_a_statement_without_force() {
        let first = upsert_statement(None, statement("example.com/app"), false).unwrap();
        let mut other = statement("example.com/other");
        other.name = "other".into();
        let two = upsert_statement(Some(&first), other, false).unwrap();
        assert_eq!(Policy::parse(&two).unwrap().statements.len(), 2);
        let err = upsert_statement(Some(&two), statement("example.com/app"), false).unwrap_err();
        assert!(matches!(err, PolicyError::Exists { .. }), "{err}");
        let replaced = upsert_statement(Some(&two), statement("example.com/app"), true).unwrap();
        let p = Policy::parse(&replaced).unwrap();
        assert_eq!(p.statements.len(), 2);
        assert!(p.statement_for("example.com/other").is_ok());
    }

    #[test]
    fn policy_init_refuses_to_edit_an_invalid_existing_policy() {
        assert!(upsert_statement(Some(b"{}"), statement("example.com/app"), true).is_err());
    }
}
