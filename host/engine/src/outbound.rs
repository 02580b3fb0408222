//! Where a plugin may send HTTP requests: only to its connection's origins, and
//! never to private, link-local or metadata addresses (loopback only when the
//! connection was added with `--allow-loopback`).

mod send;

use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(url: &str) -> Option<Origin> {
        let url = url::Url::parse(url).ok()?;
        Some(Origin {
            scheme: url.scheme().to_string(),
            // Without the brackets of an IPv6 literal, as requests are compared.
            host: url
                .host_str()?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

/// How long adding a connection waits for a name to resolve before it leaves
/// the check to the calls (offline set-up must not hang).
const DOOR_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The outbound rules of one connection.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    origins: Vec<Origin>,
    allow_loopback: bool,
}

impl OutboundPolicy {
    /// Requests to `origins` only (`scheme://host[:port]`; what does not parse
    /// allows nothing), loopback addresses only with `allow_loopback`.
    pub fn new(origins: &[String], allow_loopback: bool) -> OutboundPolicy {
        OutboundPolicy {
            origins: origins
                .iter()
                .filter_map(|url| Origin::parse(url))
                .collect(),
            allow_loopback,
        }
    }

    /// No origin at all: for calls that act on no connection.
    pub fn deny_all() -> OutboundPolicy {
        OutboundPolicy {
            origins: Vec::new(),
            allow_loopback: false,
        }
    }

    /// Checks scheme, host and port of a request against the connection's origins.
    pub fn check_uri(&self, uri: &http::Uri) -> Result<(), String> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri
            .host()
            .ok_or_else(|| "the request has no host".to_string())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let requested = Origin { scheme, host, port };
        if requested.scheme == "http" && !self.allow_loopback {
            return Err(format!(
                "plain http to {} is refused; only connections added with --allow-loopback may use it",
                requested.host
            ));
        }
        if !self.origins.contains(&requested) {
            return Err(format!(
                "{}://{}:{} is not one of this connection's origins (its environment and authority URLs)",
                requested.scheme, requested.host, requested.port
            ));
        }
        Ok(())
    }

    /// The check a connection meets when it is added, before any call: each of
    /// its origins' addresses (an IP literal as written, in any of the forms a
    /// URL allows; a name as `resolver` answers now) against the same rules as
    /// every request. A name that does not resolve now is not refused here: each
    /// request checks again.
    pub async fn check_origins(&self, resolver: &dyn Resolve) -> Result<(), String> {
        for origin in &self.origins {
            let lookup = addresses_of(resolver, &origin.host);
            let addresses = match tokio::time::timeout(DOOR_LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(addresses)) => addresses,
                Ok(Err(error)) => {
                    tracing::debug!("{} does not resolve now ({error})", origin.host);
                    continue;
                }
                Err(_) => {
                    tracing::debug!("no answer for {} in time", origin.host);
                    continue;
                }
            };
            self.check_addresses(&origin.host, &addresses)?;
        }
        Ok(())
    }

    /// Checks every address a host name resolved to.
    pub fn check_addresses(&self, host: &str, addresses: &[IpAddr]) -> Result<(), String> {
        for address in addresses {
            match classify(*address) {
                AddressClass::Public => {}
                AddressClass::Loopback if self.allow_loopback => {}
                AddressClass::Loopback => {
                    return Err(format!(
                        "{host} resolves to the loopback address {address}; only connections \
                         added with --allow-loopback may reach it"
                    ));
                }
                AddressClass::Internal => {
                    return Err(format!(
                        "{host} resolves to the private, link-local or metadata address {address}, \
                         which plugins may never reach"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum AddressClass {
    Public,
    Loopback,
    Internal,
}

fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(v4: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = v4.octets();
    if v4.is_loopback() {
        AddressClass::Loopback
    } else if v4.is_private()
        || v4.is_link_local() // includes the 169.254.169.254 metadata service
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || (a == 100 && (64..128).contains(&b)) // shared address space, cloud metadata
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, incl. Oracle's 192.0.0.192 metadata
        || a == 0
    {
        AddressClass::Internal
    } else {
        AddressClass::Public
    }
}

/// NAT64's well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits are an
/// IPv4 address a translator reaches on the client's behalf.
const NAT64_WELL_KNOWN: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];

/// 64:ff9b:1::/48 (RFC 8215), NAT64 for a network's own use: never globally
/// reachable, and where it embeds the IPv4 address depends on the local setup.
const NAT64_LOCAL_USE: [u16; 3] = [0x64, 0xff9b, 1];

/// 6to4, 2002::/16 (RFC 3056): bits 16..48 are the IPv4 address of the site.
const SIX_TO_FOUR: u16 = 0x2002;

fn classify_v6(v6: Ipv6Addr) -> AddressClass {
    let segments = v6.segments();
    if v6.is_loopback() {
        AddressClass::Loopback
    } else if let Some(v4) = v6.to_ipv4_mapped() {
        // The socket layer turns ::ffff:a.b.c.d into a.b.c.d itself: the same
        // address, so loopback stays loopback.
        classify_v4(v4)
    } else if segments[..6] == NAT64_WELL_KNOWN {
        let [.., high, low] = segments;
        through_translation(Ipv4Addr::from(u32::from(high) << 16 | u32::from(low)))
    } else if segments[0] == SIX_TO_FOUR {
        through_translation(Ipv4Addr::from(
            u32::from(segments[1]) << 16 | u32::from(segments[2]),
        ))
    } else if v6.is_unspecified()
        || v6.is_multicast()
        || v6.is_unique_local() // fc00::/7, includes AWS's fd00:ec2::254 metadata
        || v6.is_unicast_link_local()
        || segments[..3] == NAT64_LOCAL_USE
        // IPv4-compatible ::a.b.c.d, deprecated (RFC 4291): nothing legitimate
        // is addressed so any more, and stacks may route it to IPv4 a.b.c.d.
        || segments[..6] == [0; 6]
    {
        AddressClass::Internal
    } else {
        AddressClass::Public
    }
}

/// Class of an IPv4 address reached through a translator or relay (NAT64,
/// 6to4). Its loopback is another machine's, or the relay's, never this
/// host's, so the loopback opt-in does not cover it.
fn through_translation(v4: Ipv4Addr) -> AddressClass {
    match classify_v4(v4) {
        AddressClass::Public => AddressClass::Public,
        AddressClass::Loopback | AddressClass::Internal => AddressClass::Internal,
    }
}

/// The addresses a host name resolves to.
pub type Resolution<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns host names into addresses. Asked once per request: the connection goes
/// to the addresses checked from that one answer, so a DNS server changing its
/// answer between the check and the connection (rebinding) gains nothing.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolution<'a>;
}

/// The addresses `host` stands for: an IP literal is itself, a name is what
/// `resolver` answers now.
async fn addresses_of(resolver: &dyn Resolve, host: &str) -> std::io::Result<Vec<IpAddr>> {
    match host.parse::<IpAddr>() {
        Ok(literal) => Ok(vec![literal]),
        Err(_) => resolver.resolve(host).await,
    }
}

/// The operating system's resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolution<'a> {
        Box::pin(async move {
            // The lookup wants a port; the answer's ports are dropped.
            let found = tokio::net::lookup_host((host, 0)).await?;
            Ok(found.map(|socket| socket.ip()).collect())
        })
    }
}

/// Fixed answers instead of DNS, for tests; other names do not resolve.
#[derive(Debug, Default, Clone)]
pub struct FixedResolver {
    answers: HashMap<String, Vec<IpAddr>>,
}

impl FixedResolver {
    pub fn new() -> FixedResolver {
        FixedResolver::default()
    }

    /// Resolves `host` (any case) to `addresses`.
    pub fn with(mut self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.answers
            .insert(host.to_ascii_lowercase(), addresses.into_iter().collect());
        self
    }
}

impl Resolve for FixedResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> Resolution<'a> {
        let answer = self
            .answers
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no fixed answer"),
                )
            });
        Box::pin(std::future::ready(answer))
    }
}

/// Requests sent to environments and response bytes received, counted by the
/// host for every call of a runtime: the evidence of a command is what really
/// went over the network, name look-ups and sign-ins included.
#[derive(Debug, Default)]
pub struct Traffic {
    requests: AtomicU64,
    bytes_received: AtomicU64,
}

/// A reading of [`Traffic`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficReading {
    pub requests: u64,
    pub bytes_received: u64,
}

impl Traffic {
    pub fn reading(&self) -> TrafficReading {
        TrafficReading {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }
}

impl TrafficReading {
    /// What was sent and received since `earlier`.
    pub fn since(self, earlier: TrafficReading) -> TrafficReading {
        TrafficReading {
            requests: self.requests.saturating_sub(earlier.requests),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}

/// The wasi:http hooks of one plugin call: every outgoing request passes the
/// policy first, and no response body larger than the limit reaches the plugin.
/// Refusals are recorded so the host can say why a call failed.
pub struct OutboundHooks {
    policy: Arc<OutboundPolicy>,
    resolver: Arc<dyn Resolve>,
    refusals: Arc<Mutex<Vec<String>>>,
    body_limit: u64,
    traffic: Arc<Traffic>,
}

impl OutboundHooks {
    pub fn new(
        policy: OutboundPolicy,
        body_limit: u64,
        resolver: Arc<dyn Resolve>,
        traffic: Arc<Traffic>,
    ) -> Self {
        OutboundHooks {
            policy: Arc::new(policy),
            resolver,
            refusals: Arc::default(),
            body_limit,
            traffic,
        }
    }

    /// Reasons of the requests refused so far.
    pub fn refusals(&self) -> Vec<String> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = Arc::clone(&self.policy);
        let resolver = Arc::clone(&self.resolver);
        let refusals = Arc::clone(&self.refusals);
        let body_limit = self.body_limit;
        let traffic = Arc::clone(&self.traffic);
        Box::new(async move {
            let refuse = |reason: String| {
                tracing::warn!(target: "goals_host::outbound", "refused: {reason}");
                if let Ok(mut list) = refusals.lock() {
                    list.push(reason);
                }
                HttpError::HttpRequestDenied
            };
            policy.check_uri(request.uri()).map_err(refuse)?;
            let host = request.uri().host().unwrap_or_default().to_string();
            let default_port = if request.uri().scheme_str() == Some("http") {
                80
            } else {
                443
            };
            let port = request.uri().port_u16().unwrap_or(default_port);
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let addresses = addresses_of(&*resolver, name).await.map_err(|error| {
                tracing::debug!(target: "goals_host::outbound", "resolving {name}: {error}");
                HttpError::DnsError {
                    rcode: Some("lookup failed".to_string()),
                    info_code: None,
                }
            })?;
            if addresses.is_empty() {
                return Err(HttpError::DnsError {
                    rcode: Some("no addresses".to_string()),
                    info_code: None,
                });
            }
            policy.check_addresses(&host, &addresses).map_err(refuse)?;
            let checked = addresses
                .into_iter()
                .map(|address| SocketAddr::new(address, port))
                .collect();
            traffic.requests.fetch_add(1, Ordering::Relaxed);
            let (response, io) = send::send_to(request, checked, options).await?;
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|length| length > body_limit) {
                return Err(refuse(body_limit_reason(body_limit)));
            }
            let response = response.map(|body| {
                CappedBody {
                    inner: body.boxed_unsync(),
                    remaining: body_limit,
                    limit: body_limit,
                    refusals,
                    traffic,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

fn body_limit_reason(limit: u64) -> String {
    format!(
        "a response body is larger than the {} MiB the host passes to plugins (--response-limit)",
        limit >> 20
    )
}

/// A response body that fails once more than `limit` bytes came through.
struct CappedBody {
    inner: WasiBody,
    remaining: u64,
    limit: u64,
    refusals: Arc<Mutex<Vec<String>>>,
    traffic: Arc<Traffic>,
}

impl http_body::Body for CappedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let length = data.len() as u64;
            if length > self.remaining {
                let reason = body_limit_reason(self.limit);
                tracing::warn!(target: "goals_host::outbound", "refused: {reason}");
                if let Ok(mut list) = self.refusals.lock() {
                    list.push(reason);
                }
                return std::task::Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                    self.limit,
                )))));
            }
            self.remaining -= length;
            self.traffic
                .bytes_received
                .fetch_add(length, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_loopback: bool) -> OutboundPolicy {
        OutboundPolicy::new(
            &[
                "https://org.crm.dynamics.com".into(),
                "https://login.microsoftonline.com".into(),
            ],
            allow_loopback,
        )
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_connection_origins_are_reachable() {
        let p = policy(false);
        assert!(
            p.check_uri(&uri("https://org.crm.dynamics.com/api/data/v9.2/x"))
                .is_ok()
        );
        assert!(
            p.check_uri(&uri("https://ORG.crm.dynamics.com:443/x"))
                .is_ok()
        );
        assert!(
            p.check_uri(&uri(
                "https://login.microsoftonline.com/t/oauth2/v2.0/token"
            ))
            .is_ok()
        );
        assert!(p.check_uri(&uri("https://evil.example.com/")).is_err());
        assert!(
            p.check_uri(&uri("https://org.crm.dynamics.com:8443/"))
                .is_err()
        );
        assert!(p.check_uri(&uri("http://org.crm.dynamics.com/")).is_err());
    }

    #[test]
    fn internal_addresses_are_refused_and_loopback_needs_the_opt_in() {
        let strict = policy(false);
        let lenient = policy(true);
        let public: IpAddr = "20.42.1.1".parse().unwrap();
        assert!(strict.check_addresses("h", &[public]).is_ok());
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            let address: IpAddr = internal.parse().unwrap();
            assert!(
                strict.check_addresses("h", &[address]).is_err(),
                "{internal}"
            );
            assert!(
                lenient.check_addresses("h", &[address]).is_err(),
                "{internal}"
            );
        }
        for loopback in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let address: IpAddr = loopback.parse().unwrap();
            assert!(
                strict.check_addresses("h", &[address]).is_err(),
                "{loopback}"
            );
            assert!(
                lenient.check_addresses("h", &[address]).is_ok(),
                "{loopback}"
            );
        }
        assert!(
            strict
                .check_addresses("h", &[public, "127.0.0.1".parse().unwrap()])
                .is_err(),
            "one bad address among good ones is enough to refuse"
        );
    }

    /// Each address with why it is internal: embedded IPv4 addresses reached
    /// through mapping, NAT64 or 6to4, and special-purpose ranges.
    const INTERNAL_BY_OTHER_ROUTES: [(&str, &str); 16] = [
        ("::ffff:10.0.0.1", "IPv4-mapped private"),
        ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
        ("64:ff9b::10.1.2.3", "NAT64 of a private address"),
        ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"),
        (
            "64:ff9b::127.0.0.1",
            "NAT64 of loopback: the translator's own",
        ),
        ("64:ff9b:1::8.8.8.8", "local-use NAT64, never global"),
        (
            "64:ff9b:1:a00:1::",
            "local-use NAT64, /48 layout of 10.0.0.1",
        ),
        ("2002:c0a8:0101::1", "6to4 of 192.168.1.1"),
        ("2002:a9fe:a9fe::", "6to4 of 169.254.169.254"),
        ("2002:7f00:1::1", "6to4 of loopback: the relay's own"),
        ("::10.0.0.1", "IPv4-compatible, deprecated"),
        ("::8.8.8.8", "IPv4-compatible, deprecated, even public"),
        ("192.0.0.192", "Oracle Cloud metadata"),
        ("192.0.0.8", "IETF protocol assignments"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("fd00:ec2::254", "AWS IPv6 metadata, unique local"),
    ];

    #[test]
    fn addresses_internal_by_other_routes_are_refused_even_with_the_loopback_opt_in() {
        // Every address is checked before failing, so a failure lists them all.
        let reachable: Vec<String> = INTERNAL_BY_OTHER_ROUTES
            .iter()
            .filter(|(internal, _)| {
                let address: IpAddr = internal.parse().unwrap();
                classify(address) != AddressClass::Internal
                    || [false, true].into_iter().any(|allow_loopback| {
                        policy(allow_loopback)
                            .check_addresses("h", &[address])
                            .is_ok()
                    })
            })
            .map(|(internal, why)| format!("{internal} ({why})"))
            .collect();
        assert!(reachable.is_empty(), "not refused: {reachable:#?}");
        for (edge, why) in [
            ("100.63.255.255", "just below the shared address space"),
            ("100.128.0.0", "just above the shared address space"),
            ("192.0.1.1", "just above 192.0.0.0/24"),
        ] {
            assert_eq!(
                classify(edge.parse().unwrap()),
                AddressClass::Public,
                "{why}"
            );
        }
    }

    #[test]
    fn public_addresses_behind_nat64_and_6to4_stay_reachable() {
        for public in [
            "64:ff9b::20.42.1.1",
            "2002:142a:0101::1",
            "2603:1030::1",
            "64:ff9b:2::a00:1",
        ] {
            let address: IpAddr = public.parse().unwrap();
            assert_eq!(classify(address), AddressClass::Public, "{public}");
        }
    }

    /// Every form of an internal address a connection URL can take is refused
    /// when the connection is added, loopback unless allowed.
    #[tokio::test]
    async fn connection_urls_meet_the_policy_when_added() {
        let resolver = FixedResolver::new()
            .with("metadata.internal", ["169.254.169.254".parse().unwrap()])
            .with("dataverse.example", ["20.1.2.3".parse().unwrap()]);
        let check = |url: &str, allow_loopback: bool| {
            let policy = OutboundPolicy {
                origins: Origin::parse(url).into_iter().collect(),
                allow_loopback,
            };
            let resolver = resolver.clone();
            async move { policy.check_origins(&resolver).await }
        };
        let internal = [
            "https://169.254.169.254",
            "https://10.0.0.1",
            "https://172.16.0.1",
            "https://192.168.1.10",
            "https://100.64.0.1",
            "https://0.0.0.0",
            "https://192.0.0.8",
            "https://[fd00:ec2::254]",
            "https://[fe80::1]",
            "https://[::]",
            "https://[ff02::1]",
            "https://[::a00:1]",
            "https://[64:ff9b::a00:1]",
            "https://[64:ff9b::7f00:1]",
            "https://[64:ff9b:1::a00:1]",
            "https://[2002:a00:1::]",
            "https://[2002:7f00:1::]",
            "https://[::ffff:10.0.0.1]",
            "https://[::ffff:169.254.169.254]",
            "https://0xa9fea9fe",
            "https://2852039166",
            "https://0251.0376.0251.0376",
            "https://metadata.internal",
        ];
        for url in internal {
            for allow_loopback in [false, true] {
                let refused = check(url, allow_loopback).await;
                assert!(
                    refused
                        .as_ref()
                        .is_err_and(|e| e.contains("may never reach")),
                    "{url} (loopback allowed: {allow_loopback}): {refused:?}"
                );
            }
        }
        let loopback = [
            "https://127.0.0.1",
            "https://127.1",
            "https://0x7f000001",
            "https://2130706433",
            "https://0177.0.0.1",
            "https://[::1]",
            "https://[::ffff:127.0.0.1]",
        ];
        for url in loopback {
            let refused = check(url, false).await;
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("--allow-loopback")),
                "{url}: {refused:?}"
            );
            assert_eq!(
                check(url, true).await,
                Ok(()),
                "{url} with --allow-loopback"
            );
        }
        for public in [
            "https://dataverse.example",
            "https://20.1.2.3",
            "https://[2606:4700:4700::1111]",
            "https://[64:ff9b::1401:203]",
            "https://does-not-resolve.example",
        ] {
            assert_eq!(check(public, false).await, Ok(()), "{public}");
        }
    }

    #[test]
    fn a_public_ipv6_literal_origin_is_reachable() {
        let policy = OutboundPolicy {
            origins: Origin::parse("https://[2606:4700:4700::1111]")
                .into_iter()
                .collect(),
            allow_loopback: false,
        };
        assert_eq!(
            policy.check_uri(&uri("https://[2606:4700:4700::1111]/api/data/v9.2/WhoAmI")),
            Ok(())
        );
        assert!(
            policy
                .check_uri(&uri("https://[2606:4700:4700::1112]/"))
                .is_err()
        );
    }
}
