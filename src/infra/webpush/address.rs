//! The address half of the SSRF guard: a push endpoint's name must resolve
//! to public addresses only. [`PublicOnly`] is the DNS resolver of the
//! client that sends to endpoints not on `PARLEY_PUSH_ALLOW_HOSTS`, so the
//! check and the connection use the same lookup (a name cannot resolve to
//! a public address for the check and a private one for the connect).
//! Addresses written in the URL never reach a resolver; `PushEndpoint::parse`
//! checks those.

use crate::domain::push::{PushEndpoint, is_public};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

/// Why an endpoint's host is refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("the endpoint's host does not resolve")]
    Unresolved,
    #[error("the endpoint's host resolves to a private, loopback or link-local address")]
    NotPublic,
}

/// Resolves `host`; every address must be public.
pub async fn public_addresses(host: &str) -> Result<Vec<SocketAddr>, AddressError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| AddressError::Unresolved)?
        .collect();
    if found.is_empty() {
        return Err(AddressError::Unresolved);
    }
    // One private address is enough to refuse: which one the connection
    // would take is not ours to choose.
    if found.iter().any(|a| !is_public(a.ip())) {
        return Err(AddressError::NotPublic);
    }
    Ok(found)
}

/// The check at subscribe time: a client learns at once that an endpoint
/// will never be sent to. Allowed hosts and address literals (checked by
/// the parse) need no lookup.
pub async fn check(endpoint: &PushEndpoint) -> Result<(), AddressError> {
    match endpoint.domain() {
        Some(host) if !endpoint.allowed() => public_addresses(host).await.map(drop),
        _ => Ok(()),
    }
}

/// A resolver that answers public addresses only.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = public_addresses(&host).await?;
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
