//! Regression tests: see main.rs. The write side: publishing, the key-creation lock, key
//! material in memory.
//!
//! Proven on the real stack through the tampering proxy (tests/integration/publish.rs):
//! - #8 item 5, interrupted after the upload:
//!   `publish::ctrl_c_during_the_read_back_reports_the_accepted_upload_and_the_tag_is_signed`,
//!   `publish::ctrl_c_during_the_read_back_of_push_does_not_claim_the_image_is_unsigned`,
//!   `publish::an_upload_without_an_answer_is_reported_as_possibly_live_not_as_unchanged`;
//! - #8 item 8, concurrent first signers:
//!   `publish::first_signers_racing_to_initialise_one_repository_all_land`;
//! - #8 item 9, the key-creation lock held by another process, end to end:
//!   `publish::sign_gives_up_on_a_held_key_lock_after_the_timeout_and_publishes_nothing`,
//!   `publish::ctrl_c_while_waiting_for_the_key_lock_exits_130_promptly`,
//!   `publish::sign_refuses_a_key_lock_dir_open_to_other_users`;
//! - #8 item 17 (write part), the pinned root:
//!   `publish::the_root_a_publish_created_is_pinned_not_the_root_served_on_the_read_back`,
//!   `publish::a_new_root_that_the_trust_pin_refuses_is_never_uploaded`;
//! - audit P1-W4 (revoking what is not signed) and P1-W8 (pushed but unsigned, and each
//!   publish refusal provoked once): `publish::revoking_an_unsigned_tag_exits_1_and_changes_nothing`,
//!   `publish::refused_trust_upload_after_a_good_push_reports_pushed_but_unsigned_with_the_sign_hint`,
//!   `publish::each_publish_refusal_is_provoked_and_named`;
//! - audit P1-C1 (a name that said two signers for four): `trust::concurrent_signers_of_one_repository_all_land`.
//! - #9 item 4, signers as docker's: `signers::docker_signer_key_loaded_here_signs_into_its_delegation_and_releases`,
//!   `signers::docker_made_repository_with_a_signer_is_pushed_into_the_delegation_after_key_import`,
//!   `signers::key_generated_here_signs_with_docker_and_a_removed_signer_is_gone_everywhere`,
//!   `signers::bad_signer_input_is_refused_with_the_keyring_unchanged`,
//!   `signers::signer_keys_and_passphrases_never_reach_debug_output_or_plain_files`,
//!   `publish::each_publish_refusal_is_provoked_and_named` (no key for any accepted role).
//! - #12 item 5, a lighter sign: the read-back takes the uploaded targets from memory only when
//!   the new snapshot lists them, and caches the whole new state:
//!   `publish::a_sign_reads_back_timestamp_and_snapshot_not_its_own_targets_and_caches_the_whole_new_state`;
//!   keys read over the plugin's own encrypted Secret Service session, against gnome-keyring:
//!   `keys::signing_reads_its_keys_over_its_own_encrypted_secret_service_session`, and its
//!   refusal of trivial Diffie-Hellman values: `keystore::session::tests::trivial_public_values_are_refused`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use docker_trustacr::keystore::KeystoreError;
use docker_trustacr::keystore::keys::{KeyName, SigningKey};
use docker_trustacr::keystore::lock::{KeyLock, LockPlace};
use docker_trustacr::plugin::cancel::Cancellation;

fn place(dir: &std::path::Path, timeout: Duration) -> LockPlace {
    LockPlace {
        dir: dir.to_path_buf(),
        timeout,
    }
}

// See: #8 item 9
#[test]
fn key_lock_held_by_another_is_waited_for_then_refused_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lock");
    let p = place(&dir, Duration::from_millis(400));
    let first = KeyLock::acquire(&p, &Cancellation::never()).unwrap();
    let start = Instant::now();
    let err = KeyLock::acquire(&p, &Cancellation::never()).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert!(
        matches!(&err, KeystoreError::LockTimeout { path, .. } if path.ends_with("keyring.lock")),
        "{err}"
    );
    assert!(err.to_string().contains("another docker trustacr process"));
    drop(first);
    // Released on drop: the next taker gets it at once.
    KeyLock::acquire(&p, &Cancellation::never()).unwrap();
}

// See: #8 item 9
#[test]
fn key_lock_dir_open_to_other_users_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lock");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = KeyLock::acquire(&place(&dir, Duration::ZERO), &Cancellation::never()).unwrap_err();
    assert!(
        matches!(&err, KeystoreError::LockDir { reason, .. } if reason.contains("mode is 777")),
        "{err}"
    );
    assert!(!dir.join("keyring.lock").exists(), "nothing created in it");
}

// See: #8 item 9
#[test]
fn key_lock_dir_of_another_user_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lock");
    std::fs::create_dir(&dir).unwrap();
    let me = std::fs::metadata(tmp.path()).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    // Giving a directory away needs root; as another user, a directory of root's stands in.
    let foreign = if me.unwrap() == 0 {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir.clone()
    } else {
        std::path::PathBuf::from("/root")
    };
    let err =
        KeyLock::acquire(&place(&foreign, Duration::ZERO), &Cancellation::never()).unwrap_err();
    assert!(
        matches!(&err, KeystoreError::LockDir { reason, .. } if reason.contains("not to you")),
        "{err}"
    );
}

// See: #8 item 9
#[test]
fn key_lock_in_place_of_a_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("lock");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = KeyLock::acquire(&place(&link, Duration::ZERO), &Cancellation::never()).unwrap_err();
    assert!(
        matches!(&err, KeystoreError::LockDir { reason, .. } if reason.contains("not a directory")),
        "{err}"
    );
}

/// Watches freed heap blocks for a byte pattern while armed: a secret that reaches `free`
/// without being wiped is counted.
struct Watch;

const MAX_PATTERN: usize = 64;
static ARMED: AtomicBool = AtomicBool::new(false);
static PATTERN: [AtomicU8; MAX_PATTERN] = [const { AtomicU8::new(0) }; MAX_PATTERN];
static PATTERN_LEN: AtomicUsize = AtomicUsize::new(0);
static FREED_WITH_SECRET: AtomicUsize = AtomicUsize::new(0);
static ONE_WATCH: Mutex<()> = Mutex::new(());

#[global_allocator]
static WATCH: Watch = Watch;

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            let n = PATTERN_LEN.load(Ordering::SeqCst);
            // SAFETY: the block is still allocated and `layout.size()` bytes long.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if n > 0
                && block.windows(n).any(|w| {
                    w.iter()
                        .zip(PATTERN.iter())
                        .all(|(b, p)| *b == p.load(Ordering::Relaxed))
                })
            {
                FREED_WITH_SECRET.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Counts the heap blocks freed with `pattern` in them while `f` runs.
fn freed_with(pattern: &[u8], f: impl FnOnce()) -> usize {
    assert!(pattern.len() <= MAX_PATTERN);
    for (slot, b) in PATTERN.iter().zip(pattern) {
        slot.store(*b, Ordering::SeqCst);
    }
    PATTERN_LEN.store(pattern.len(), Ordering::SeqCst);
    FREED_WITH_SECRET.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    f();
    ARMED.store(false, Ordering::SeqCst);
    FREED_WITH_SECRET.load(Ordering::SeqCst)
}

// See: #8 item 16
#[test]
fn keyring_secret_base64_and_seed_are_wiped_before_their_memory_is_freed() {
    let _one = ONE_WATCH.lock().unwrap();
    let name = KeyName::Targets {
        gun: "example.com/app".into(),
    };
    for key in [
        SigningKey::generate_ed25519().unwrap(),
        SigningKey::generate_p256().unwrap(),
    ] {
        // The base64 private key and the raw key bytes, copied into fixed arrays (no heap).
        let mut b64 = [0u8; MAX_PATTERN];
        let mut raw = [0u8; 32];
        let b64_len;
        {
            let secret = key.to_keyring_secret();
            let start = secret.find("\"private\":\"").unwrap() + "\"private\":\"".len();
            let end = start + secret[start..].find('"').unwrap();
            b64_len = end - start;
            b64[..b64_len].copy_from_slice(&secret.as_bytes()[start..end]);
            use base64::Engine as _;
            let n = base64::engine::general_purpose::STANDARD
                .decode_slice(&b64[..b64_len], &mut raw)
                .unwrap();
            assert_eq!(n, 32);
        }
        let round_trip = || {
            let secret = key.to_keyring_secret();
            let back = SigningKey::from_keyring_secret(&secret, &name).unwrap();
            assert_eq!(back.public(), key.public());
        };
        assert_eq!(
            freed_with(&b64[..b64_len], round_trip),
            0,
            "the base64 private key reached free() unwiped"
        );
        assert_eq!(
            freed_with(&raw, round_trip),
            0,
            "the raw private key reached free() unwiped"
        );
    }
}

/// Keys in memory for the editor: a fixed set, looked up by the IDs a role accepts; new keys
/// are made on demand under `created`.
#[derive(Default)]
struct HeldKeys {
    held: Vec<SigningKey>,
    created: Mutex<Vec<(String, SigningKey)>>,
}

fn copy_key(k: &SigningKey) -> SigningKey {
    SigningKey::from_keyring_secret(&k.to_keyring_secret(), &KeyName::Root).unwrap()
}

impl docker_trustacr::keystore::KeySource for HeldKeys {
    fn find(&self, _: &KeyName, allowed: &[String]) -> Result<Option<SigningKey>, KeystoreError> {
        Ok(self
            .held
            .iter()
            .find(|k| allowed.contains(&k.public().id()))
            .map(copy_key))
    }

    fn get_or_create(
        &self,
        name: &KeyName,
        kind: docker_trustacr::keystore::KeyKind,
    ) -> Result<(SigningKey, bool), KeystoreError> {
        let mut made = self.created.lock().unwrap();
        if let Some((_, k)) = made.iter().find(|(n, _)| *n == name.entry()) {
            return Ok((copy_key(k), false));
        }
        let k = match kind {
            docker_trustacr::keystore::KeyKind::P256 => SigningKey::generate_p256()?,
            docker_trustacr::keystore::KeyKind::Ed25519 => SigningKey::generate_ed25519()?,
        };
        made.push((name.entry(), copy_key(&k)));
        Ok((k, true))
    }
}

// See: #9 item 4
#[test]
fn a_tag_is_never_signed_only_into_a_delegation_docker_pull_does_not_read() {
    use docker_trustacr::tuf::editor::{Change, EditError, UnsignedUpdate};
    use docker_trustacr::tuf::metadata::{
        Base64Bytes, DelegatedRole, FileMeta, SignedFile, Targets,
    };
    let gun = "example.com/app";
    let now = time::OffsetDateTime::now_utc();
    let meta = FileMeta {
        custom: None,
        hashes: std::collections::BTreeMap::from([("sha256".into(), Base64Bytes(vec![7; 32]))]),
        length: 10,
    };
    let owner = HeldKeys::default();
    let server = docker_trustacr::tuf::editor::ServerKeys {
        timestamp: SigningKey::generate_ed25519().unwrap().public(),
        snapshot: SigningKey::generate_ed25519().unwrap().public(),
    };
    let mut u = UnsignedUpdate::init(gun, server, now);
    u.apply(Change::add("v1", meta.clone())).unwrap();
    let signed = u.sign(&owner).unwrap();
    let parse = |role: &str, bytes: &[u8]| SignedFile::parse(role, bytes).unwrap().signed;
    let root = serde_json::from_value(parse("root", signed.new_root().unwrap())).unwrap();
    let mut targets: Targets =
        serde_json::from_value(parse("targets", &signed.files()[1].1)).unwrap();
    // A notary-made delegation `targets/ci`, outside targets/releases.
    let ci = SigningKey::generate_p256().unwrap();
    targets
        .delegations
        .keys
        .insert(ci.public().id(), ci.public());
    targets.delegations.roles.push(DelegatedRole {
        keyids: Some(vec![ci.public().id()]),
        name: "targets/ci".into(),
        paths: vec![String::new()],
        threshold: 1,
    });
    let ci_only = HeldKeys {
        held: vec![copy_key(&ci)],
        ..HeldKeys::default()
    };
    let mut u = UnsignedUpdate::update(gun, &root, Some(&targets), None, now);
    u.apply(Change::add("v2", meta)).unwrap();
    let err = u.sign(&ci_only).unwrap_err();
    assert!(matches!(err, EditError::NotResolvable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("sign only targets/ci") && text.contains("targets/releases"),
        "{text}"
    );
}
