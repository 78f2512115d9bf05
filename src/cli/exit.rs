//! Exit codes by kind of failure, so that scripts can tell "not signed" from "the network is
//! down" without reading messages. The README's "Exit codes" table lists them; the integration
//! test `exit_codes_match_the_readme_table` produces each one with a real failing command.
//!
//! The numbers keep clap's 2 for usage and the shells' 128 + SIGINT for cancellation, and use
//! 3–6 for the rest: the docker CLI passes a plugin's exit code through, and its own codes
//! (1, and 125–127 of `docker run`) do not overlap them.
//!
//! Every variant is classified here, in one table, rather than by each layer: which failures a
//! script may branch on is a decision of the command line, and one match shows all of them.

use super::Error;
use crate::acr::AcrError;
use crate::acr::arm::ArmError;
use crate::engine::EngineError;
use crate::entra::EntraError;
use crate::keystore::KeystoreError;
use crate::notary::client::ClientError;
use crate::notary::publish::PublishError;
use crate::registry::auth::AuthError;
use crate::registry::referrers::ReferrersError;
use crate::registry::{HttpError, ManifestError};

/// Any other failure; the message says what.
pub const EXIT_FAILURE: u8 = 1;
/// Usage errors, as clap uses.
pub const EXIT_USAGE: u8 = 2;
/// The tag (or repository) has no signature of the kinds asked for.
pub const EXIT_NOT_SIGNED: u8 = 3;
/// Signatures or trust data exist and were refused: tampered, expired, untrusted, rolled back,
/// or a server answer that breaks the rules (too large, a foreign token realm).
pub const EXIT_REFUSED: u8 = 4;
/// The identity may not do this: 401/403, a refused sign-in, a missing ACR role.
pub const EXIT_PERMISSION: u8 = 5;
/// A server could not be reached: connect, DNS, TLS, timeout, or no answer.
pub const EXIT_NETWORK: u8 = 6;
/// Stopped by Ctrl-C, SIGTERM, the docker CLI or `TRUSTACR_TIMEOUT` (128 + SIGINT, as shells
/// do).
pub const EXIT_CANCELLED: u8 = 130;

/// The kind of a failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`EXIT_FAILURE`]
    Failed,
    /// [`EXIT_USAGE`]
    Usage,
    /// [`EXIT_NOT_SIGNED`]
    NotSigned,
    /// [`EXIT_REFUSED`]
    Refused,
    /// [`EXIT_PERMISSION`]
    Permission,
    /// [`EXIT_NETWORK`]
    Network,
    /// [`EXIT_CANCELLED`]
    Cancelled,
}

impl Kind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Failed => EXIT_FAILURE,
            Kind::Usage => EXIT_USAGE,
            Kind::NotSigned => EXIT_NOT_SIGNED,
            Kind::Refused => EXIT_REFUSED,
            Kind::Permission => EXIT_PERMISSION,
            Kind::Network => EXIT_NETWORK,
            Kind::Cancelled => EXIT_CANCELLED,
        }
    }
}

fn denied(status: u16) -> bool {
    matches!(status, 401 | 403)
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Invocation(_) | Error::Usage(_) | Error::Reference(_) => Kind::Usage,
            Error::Cancelled(_) => Kind::Cancelled,
            Error::NotSigned { .. } | Error::NoSignature(_) => Kind::NotSigned,
            Error::Unverified(_) | Error::DigestMismatch { .. } | Error::UnsafeName(_) => {
                Kind::Refused
            }
            Error::MissingRole { .. } | Error::AcrLimitation { .. } => Kind::Permission,
            Error::Engine(e) => engine(e),
            Error::Keystore(e) => keystore(e),
            Error::Notary(e) => client(e),
            Error::Publish(e) => publish(e),
            Error::Http(e) => http(e),
            Error::Manifest(e) => manifest(e),
            Error::Acr(e) => acr(e),
            Error::Arm(e) => arm(e),
            Error::Notation(e) => notation_verify(e),
            Error::NotationSign(e) => notation_sign(e),
            Error::Rotate(e) => rotate(e),
            Error::PushedButUnsigned { cause, .. } | Error::Inaccessible { cause, .. } => {
                cause.kind()
            }
            Error::Several(errors) => several(errors),
            Error::Config(_)
            | Error::Context(_)
            | Error::Credential(_)
            | Error::KeyImport(_)
            | Error::KeyExport(_)
            | Error::SignerKey(_)
            | Error::Task { .. }
            | Error::Endpoint(_)
            | Error::TrustPinning(_)
            | Error::Output(_)
            | Error::Check { .. }
            | Error::PolicyInit(_) => Kind::Failed,
        }
    }

    /// The process exit code.
    pub(super) fn exit_code(&self) -> u8 {
        self.kind().code()
    }
}

/// Several independent failures: their kind when they agree, cancelled when any was, else
/// generic (a script cannot act on a mix).
fn several(errors: &[Error]) -> Kind {
    let kinds: Vec<Kind> = errors.iter().map(Error::kind).collect();
    if kinds.contains(&Kind::Cancelled) {
        return Kind::Cancelled;
    }
    match kinds.split_first() {
        Some((first, rest)) if rest.iter().all(|k| k == first) => *first,
        _ => Kind::Failed,
    }
}

fn engine(e: &EngineError) -> Kind {
    match e {
        EngineError::Unreachable { .. } => Kind::Network,
        _ => Kind::Failed,
    }
}

fn keystore(e: &KeystoreError) -> Kind {
    match e {
        KeystoreError::Interrupted(_) => Kind::Cancelled,
        _ => Kind::Failed,
    }
}

fn entra(e: &EntraError) -> Kind {
    match e {
        // Refused covers a wrong secret as well as a tool that crashed or printed too much:
        // not something a script can take for "no permission". ACR refusing the Entra token
        // (the exchange) is the permission case.
        EntraError::Refused { .. } | EntraError::Unavailable { .. } => Kind::Failed,
    }
}

pub(super) fn http(e: &HttpError) -> Kind {
    match e {
        HttpError::Unreachable { .. } => Kind::Network,
        HttpError::Status { status, .. } if denied(*status) => Kind::Permission,
        HttpError::Status { .. } => Kind::Failed,
        HttpError::TooLarge { .. } => Kind::Refused,
        HttpError::Auth(a) => match a {
            AuthError::Refused { .. } => Kind::Permission,
            AuthError::RealmRefused { .. } => Kind::Refused,
            AuthError::Unreachable { .. } => Kind::Network,
            AuthError::NoToken { .. } => Kind::Failed,
            // Still 429/503 after the bounded wait: transient, as a timeout is.
            AuthError::Throttled { .. } => Kind::Network,
        },
        HttpError::Setup(_) => Kind::Failed,
    }
}

fn client(e: &ClientError) -> Kind {
    match e {
        ClientError::NotFound { .. } => Kind::NotSigned,
        ClientError::Http(h) => http(h),
        ClientError::Verify(_) => Kind::Refused,
        ClientError::Cache { .. } => Kind::Failed,
    }
}

fn publish(e: &PublishError) -> Kind {
    match e {
        PublishError::Interrupted { .. } => Kind::Cancelled,
        PublishError::Client(c) => client(c),
        PublishError::Http(h) => http(h),
        PublishError::Unanswered { .. } => Kind::Network,
        PublishError::OwnRootUntrusted { .. } => Kind::Refused,
        PublishError::Rejected { refusal, .. } if denied(refusal.status) => Kind::Permission,
        PublishError::Rejected { .. }
        | PublishError::Edit(_)
        | PublishError::ServerKeys(_)
        | PublishError::Contention { .. }
        | PublishError::NotVisible { .. }
        | PublishError::ReadBack { .. }
        | PublishError::Cache { .. } => Kind::Failed,
    }
}

fn manifest(e: &ManifestError) -> Kind {
    match e {
        ManifestError::Http(h) => http(h),
        ManifestError::Status { status, .. } if denied(*status) => Kind::Permission,
        ManifestError::DigestMismatch { .. } => Kind::Refused,
        ManifestError::NotFound { .. } | ManifestError::Status { .. } => Kind::Failed,
    }
}

fn acr(e: &AcrError) -> Kind {
    match e {
        AcrError::Entra(e) => entra(e),
        AcrError::ExchangeRefused { .. } => Kind::Permission,
        AcrError::TokenRefused { status, .. } if denied(*status) => Kind::Permission,
        AcrError::TokenRefused { .. } => Kind::Failed,
        AcrError::Unreachable { .. } | AcrError::Throttled(_) => Kind::Network,
        AcrError::Keystore(k) => keystore(k),
    }
}

fn arm(e: &ArmError) -> Kind {
    match e {
        ArmError::Entra(e) => entra(e),
        ArmError::Unreachable { .. } => Kind::Network,
        ArmError::Refused { status, .. } if denied(*status) => Kind::Permission,
        _ => Kind::Failed,
    }
}

fn referrers(e: &ReferrersError) -> Kind {
    match e {
        ReferrersError::Http(h) => http(h),
        ReferrersError::Status { status, .. } if denied(*status) => Kind::Permission,
        ReferrersError::NoTag(_) => Kind::NotSigned,
        ReferrersError::ForeignLink(_) | ReferrersError::TooManyPages => Kind::Refused,
        _ => Kind::Failed,
    }
}

fn notation_verify(e: &super::verify::NotationError) -> Kind {
    use super::verify::NotationError as N;
    match e {
        N::Referrers(r) => referrers(r),
        N::NoSignature { .. } => Kind::NotSigned,
        N::Refused { .. } => Kind::Refused,
        N::Policy(_) | N::TrustStore(_) | N::NoPolicy(_) | N::PolicyFile { .. } => Kind::Failed,
        // The policy says not to verify: nothing verified, so nothing is vouched for.
        N::Skipped { .. } => Kind::Refused,
    }
}

fn notation_sign(e: &super::notation::NotationError) -> Kind {
    use super::notation::NotationError as N;
    match e {
        N::Discovery(r) => referrers(r),
        _ => Kind::Failed,
    }
}

fn rotate(e: &crate::notary::rotate::RotateError) -> Kind {
    use crate::notary::rotate::RotateError as R;
    match e {
        R::Interrupted(_) => Kind::Cancelled,
        R::Fetch { source, .. } => client(source),
        R::Unanswered { .. } => Kind::Network,
        _ => Kind::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_signed() -> Error {
        Error::NotSigned {
            tag: "v1".into(),
            gun: "r.example/app".into(),
            skipped: vec![],
        }
    }

    #[test]
    fn several_failures_keep_their_kind_only_when_they_agree() {
        let same = Error::Several(vec![not_signed(), not_signed()]);
        assert_eq!(same.exit_code(), EXIT_NOT_SIGNED);
        let mixed = Error::Several(vec![not_signed(), Error::Usage("x".into())]);
        assert_eq!(mixed.exit_code(), EXIT_FAILURE, "a mix is not one kind");
        let cancelled = Error::Several(vec![
            not_signed(),
            Error::Cancelled(crate::plugin::cancel::CancelReason::Interrupt),
        ]);
        assert_eq!(cancelled.exit_code(), EXIT_CANCELLED);
    }

    #[test]
    fn http_answers_are_classified_by_status_not_as_network() {
        let status = |status| {
            Error::Http(HttpError::Status {
                status,
                reason: format!("answered {status}"),
            })
        };
        assert_eq!(status(403).exit_code(), EXIT_PERMISSION);
        assert_eq!(status(401).exit_code(), EXIT_PERMISSION);
        assert_eq!(status(500).exit_code(), EXIT_FAILURE);
        let down = Error::Http(HttpError::Unreachable {
            url: "https://n.example".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(down.exit_code(), EXIT_NETWORK);
        let wrapped = Error::PushedButUnsigned {
            reference: "r.example/app:v1".into(),
            digest: "sha256:0".into(),
            cause: Box::new(down),
        };
        assert_eq!(wrapped.exit_code(), EXIT_NETWORK, "the cause decides");
    }
}
