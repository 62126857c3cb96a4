//! Web Push subscriptions as a client sends them (contract 6.3): the
//! endpoint, where parley will send requests (so user input that decides
//! an outbound request: [`PushEndpoint::parse`] is the SSRF gate for what
//! the URL itself says), and the browser's keys ([`PushKeys::parse`]).
//!
//! Names resolve later: `infra::webpush` refuses a name that resolves to a
//! non-public address, at subscribe time and again at every send.

use super::Invalid;
use base64::Engine;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest endpoint accepted; real push services use well under 1 KiB.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// `PARLEY_PUSH_ALLOW_HOSTS`: `host:port` pairs (lower-case) admitted
/// whatever their address and scheme: tests, private push services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowHosts(Vec<String>);

impl AllowHosts {
    /// From the setting's entries; blanks are ignored.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        let hosts = entries
            .iter()
            .map(|e| e.as_ref().trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Self(hosts)
    }

    fn admits(&self, host: &str, port: u16) -> bool {
        let wanted = format!("{}:{port}", host.to_ascii_lowercase());
        self.0.contains(&wanted)
    }
}

/// A push endpoint parley may send to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushEndpoint {
    url: url::Url,
    /// On `PARLEY_PUSH_ALLOW_HOSTS`: no address check at send time.
    allowed: bool,
}

impl PushEndpoint {
    /// An absolute `https` URL without credentials whose host, when it is
    /// an address, is public; any `http(s)` URL on an allowed `host:port`.
    pub fn parse(raw: &str, allow: &AllowHosts) -> Result<Self, Invalid> {
        if raw.len() > MAX_ENDPOINT_LEN {
            return Err(Invalid::TooLong {
                max: MAX_ENDPOINT_LEN,
            });
        }
        let url = url::Url::parse(raw).map_err(|_| Invalid::PushEndpoint)?;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(Invalid::PushEndpoint);
        };
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(Invalid::PushEndpoint);
        }
        let allowed = allow.admits(host.trim_matches(['[', ']']), port);
        let scheme_ok = url.scheme() == "https" || (allowed && url.scheme() == "http");
        if !scheme_ok {
            return Err(Invalid::PushEndpoint);
        }
        let literal_ok = match url.host() {
            Some(url::Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
            _ => true,
        };
        if !allowed && !literal_ok {
            return Err(Invalid::PushEndpoint);
        }
        Ok(Self { url, allowed })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Whether `PARLEY_PUSH_ALLOW_HOSTS` admits it (no address check).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The host name, when it is a name (an address needs no lookup).
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }

    /// `scheme://host[:port]`: the VAPID `aud` (RFC 8292 section 2).
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// The browser's keys of a subscription (RFC 8291): its P-256 public key
/// and its auth secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushKeys {
    /// Uncompressed point, 65 bytes, on the curve.
    pub p256dh: Vec<u8>,
    pub auth: Vec<u8>,
}

/// Which key of [`PushKeys`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushKeyField {
    P256dh,
    Auth,
}

impl PushKeys {
    pub const AUTH_LEN: usize = 16;

    /// Both keys in base64url (padding optional), as `PushSubscription.toJSON()`
    /// gives them.
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, (PushKeyField, Invalid)> {
        let point = decode(p256dh)
            .filter(|b| b.len() == 65 && b[0] == 4)
            .filter(|b| p256::PublicKey::from_sec1_bytes(b).is_ok())
            .ok_or((PushKeyField::P256dh, Invalid::P256Point))?;
        let auth = decode(auth).filter(|b| b.len() == Self::AUTH_LEN).ok_or((
            PushKeyField::Auth,
            Invalid::Base64Url {
                bytes: Self::AUTH_LEN,
            },
        ))?;
        Ok(Self {
            p256dh: point,
            auth,
        })
    }
}

fn decode(raw: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (CGNAT), documentation, multicast, reserved or
/// unspecified, nor an IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    ];
    !BLOCKED
        .iter()
        .filter_map(|net| net.parse::<Ipv4Net>().ok())
        .any(|net| net.contains(&ip))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    const BLOCKED: &[&str] = &[
        "::/127",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ];
    !BLOCKED
        .iter()
        .filter_map(|net| net.parse::<Ipv6Net>().ok())
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(hosts: &[&str]) -> AllowHosts {
        AllowHosts::new(hosts)
    }

    #[test]
    fn only_https_on_public_addresses_unless_allowed() {
        let none = allow(&[]);
        assert!(PushEndpoint::parse("https://fcm.googleapis.com/fcm/send/abc", &none).is_ok());
        assert!(PushEndpoint::parse("http://fcm.googleapis.com/x", &none).is_err());
        assert!(PushEndpoint::parse("https://127.0.0.1:8443/x", &none).is_err());
        assert!(PushEndpoint::parse("https://[::1]/x", &none).is_err());
        assert!(PushEndpoint::parse("https://[::ffff:10.0.0.1]/x", &none).is_err());
        assert!(PushEndpoint::parse("https://169.254.169.254/latest", &none).is_err());
        assert!(PushEndpoint::parse("https://user:pw@push.example.com/x", &none).is_err());
        assert!(PushEndpoint::parse("file:///etc/passwd", &none).is_err());
        assert!(PushEndpoint::parse("not a url", &none).is_err());
        let local = allow(&["127.0.0.1:8443"]);
        let endpoint = PushEndpoint::parse("http://127.0.0.1:8443/x", &local).unwrap();
        assert!(endpoint.allowed());
        assert_eq!(endpoint.origin(), "http://127.0.0.1:8443");
        // The allow-list names a port: another port of that host is not on it.
        assert!(PushEndpoint::parse("http://127.0.0.1:8444/x", &local).is_err());
    }

    #[test]
    fn public_addresses_are_told_apart() {
        for ip in ["8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
            "169.254.169.254",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:192.168.0.1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn keys_are_a_curve_point_and_a_16_byte_secret() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let p256dh = b64(point.as_bytes());
        assert!(PushKeys::parse(&p256dh, &b64(&[7; 16])).is_ok());
        assert_eq!(
            PushKeys::parse(&p256dh, &b64(&[7; 15])).unwrap_err().0,
            PushKeyField::Auth
        );
        let mut off_curve = point.as_bytes().to_vec();
        off_curve[64] ^= 1;
        assert_eq!(
            PushKeys::parse(&b64(&off_curve), &b64(&[7; 16]))
                .unwrap_err()
                .0,
            PushKeyField::P256dh
        );
        assert!(PushKeys::parse("!!", &b64(&[7; 16])).is_err());
    }
}
