//! Publishes a repository with many signed tags in one go, for the 10,000-tag benchmark:
//! `bulk_publish <notary URL> <GUN> <count>`. Keys come from the OS keyring as for `sign`;
//! the digests are synthetic (no registry is involved).

use std::collections::BTreeMap;

use docker_trustacr::dockercfg::credentials::Credential;
use docker_trustacr::keystore::Keyring;
use docker_trustacr::keystore::lock::LockPlace;
use docker_trustacr::notary::NotaryServer;
use docker_trustacr::notary::cache::Cache;
use docker_trustacr::notary::publish::{Change, Publisher};
use docker_trustacr::plugin::cancel::Cancellation;
use docker_trustacr::registry::auth::Authenticator;
use docker_trustacr::registry::endpoint::{Endpoint, RegistryHost};
use docker_trustacr::registry::{AuthedClient, client_for};
use docker_trustacr::tuf::metadata::{Base64Bytes, FileMeta};
use docker_trustacr::tuf::verify::{Limits, RootTrust};
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, gun, count] = args.as_slice() else {
        return Err("usage: bulk_publish NOTARY_URL GUN COUNT".into());
    };
    let count: usize = count.parse()?;
    let trust_dir = tempfile::tempdir()?;
    // A benchmark notary on loopback: certificate checks skipped, as for a loopback registry.
    let base = Endpoint::notary(Some(url), &RegistryHost::parse("localhost")?, false)?;
    let http = client_for(trust_dir.path(), &base)?;
    let server = NotaryServer {
        base,
        gun: gun.clone(),
        client: AuthedClient {
            http,
            auth: Authenticator::new(Credential::Anonymous),
        },
    };
    let changes: Vec<Change> = (0..count)
        .map(|i| {
            let tag = format!("t{i}");
            let sha = Sha256::digest(tag.as_bytes()).to_vec();
            Change::add(
                tag,
                FileMeta {
                    custom: None,
                    hashes: BTreeMap::from([("sha256".to_string(), Base64Bytes(sha))]),
                    length: 1000 + i as i64,
                },
            )
        })
        .collect();
    let cache = Cache::new(trust_dir.path(), gun, 100 << 20)?;
    let now = time::OffsetDateTime::now_utc();
    let cancel = Cancellation::never();
    let keys = Keyring::new(LockPlace::for_user(), cancel.clone());
    let publisher = Publisher {
        server: &server,
        cache: &cache,
        trust: &RootTrust::Tofu,
        limits: &Limits::default(),
        keys: &keys,
        cancel: &cancel,
    };
    publisher.publish(&changes, now).await?;
    println!("published {count} tags to {gun}");
    Ok(())
}
