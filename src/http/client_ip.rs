//! The client's IP address: the socket peer, or, when the peer is a
//! trusted proxy (`PARLEY_TRUSTED_PROXIES`: addresses or CIDR ranges), the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//! Left-most entries are client-controlled and never believed.

use crate::config::ProxyRange;
use actix_web::HttpRequest;
use std::net::IpAddr;

/// Whether `ip` is inside one of the trusted proxy ranges.
pub fn is_trusted(trusted: &[ProxyRange], ip: IpAddr) -> bool {
    trusted.iter().any(|range| range.contains(ip))
}

pub fn client_ip(req: &HttpRequest, trusted: &[ProxyRange]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    if !is_trusted(trusted, peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(trusted, *ip))
        .or(Some(peer))
}
