//! UPnP-IGD: find the router by SSDP (M-SEARCH to 239.255.255.250:1900,
//! and to the gateway itself), read its device description for the
//! WANIPConnection (or WANPPPConnection) control URL, and call it over
//! SOAP: GetExternalIPAddress, AddPortMapping, DeletePortMapping.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::http1::{self, Url};
use super::{NetError, Protocol};

const SSDP: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    Ipv4Addr::new(239, 255, 255, 250),
    1900,
));
/// What we search for: the gateway device, and its IP connection service
/// (some routers answer only one of them).
const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
];
/// The services that carry the port-mapping actions, best first.
const SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
/// Time limit of one HTTP exchange with the router.
const HTTP_LIMIT: Duration = Duration::from_secs(5);

/// A router's connection service, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Igd {
    /// Where the description was.
    pub location: String,
    /// The control URL of the service.
    pub control: Url,
    /// The service type (the SOAP namespace of its actions).
    pub service: String,
}

/// The M-SEARCH request for `target`.
pub fn m_search(target: &str) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: {target}\r\n\r\n"
    )
}

/// The LOCATION of an SSDP answer.
pub fn location_of(answer: &str) -> Option<String> {
    if !answer.starts_with("HTTP/1.1 200") && !answer.starts_with("HTTP/1.0 200") {
        return None;
    }
    answer.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    })
}

/// The text of the first `<tag>…</tag>` in `xml` (any namespace prefix).
pub fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = xml[from..].find('<') {
        let start = from + i + 1;
        let end = start + xml[start..].find('>')?;
        let name = &xml[start..end];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == tag {
            let body = &xml[end + 1..];
            let close = body.find("</")?;
            return Some(body[..close].trim());
        }
        from = end;
    }
    None
}

/// The best connection service of a device description: its type and its
/// control URL as written.
pub fn connection_service(description: &str) -> Option<(String, String)> {
    let mut found: Vec<(usize, String, String)> = Vec::new();
    for block in description.split("<service>").skip(1) {
        let block = block.split("</service>").next().unwrap_or(block);
        let (Some(kind), Some(control)) =
            (element(block, "serviceType"), element(block, "controlURL"))
        else {
            continue;
        };
        if let Some(rank) = SERVICES.iter().position(|s| *s == kind) {
            found.push((rank, kind.to_string(), control.to_string()));
        }
    }
    found.sort_by_key(|f| f.0);
    found.into_iter().next().map(|(_, k, c)| (k, c))
}

/// Finds the router's IGD within `wait`: M-SEARCH (multicast, and unicast
/// to `gateway` when known), then its description.
pub async fn discover(gateway: Option<Ipv4Addr>, wait: Duration) -> Result<Igd, NetError> {
    let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .map_err(|e| NetError::Unreachable(format!("cannot open a UDP socket: {e}")))?;
    let _ = socket.set_multicast_ttl_v4(2);
    for target in SEARCH_TARGETS {
        let m = m_search(target);
        let _ = socket.send_to(m.as_bytes(), SSDP).await;
        if let Some(gw) = gateway {
            let _ = socket.send_to(m.as_bytes(), (gw, 1900)).await;
        }
    }
    let until = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 2048];
    let mut tried = Vec::new();
    let mut last_error = None;
    loop {
        let got = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await;
        let Ok(Ok((n, _from))) = got else { break };
        let text = String::from_utf8_lossy(&buf[..n]);
        let Some(location) = location_of(&text) else {
            continue;
        };
        if tried.contains(&location) {
            continue;
        }
        tried.push(location.clone());
        match describe(&location).await {
            Ok(igd) => return Ok(igd),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        NetError::Unsupported("no UPnP Internet Gateway Device answered on the network".into())
    }))
}

/// Reads the description at `location` for its connection service.
pub async fn describe(location: &str) -> Result<Igd, NetError> {
    let url = Url::parse(location)?;
    let answer = http1::exchange("GET", &url, &[], "", HTTP_LIMIT).await?;
    if answer.status != 200 {
        return Err(NetError::Refused(format!(
            "the router's description at {location} answered {}",
            answer.status
        )));
    }
    let (service, control) = connection_service(&answer.body).ok_or_else(|| {
        NetError::Unsupported("the router's UPnP device has no WAN connection service".into())
    })?;
    let base = match element(&answer.body, "URLBase") {
        Some(b) if !b.is_empty() => Url::parse(b)?,
        _ => url,
    };
    Ok(Igd {
        location: location.to_string(),
        control: base.join(&control)?,
        service,
    })
}

/// A SOAP envelope calling `action` of `service` with `args`.
pub fn envelope(service: &str, action: &str, args: &[(&str, String)]) -> String {
    let mut inner = String::new();
    for (k, v) in args {
        inner.push_str(&format!("<{k}>{v}</{k}>"));
    }
    format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{service}\">{inner}</u:{action}></s:Body></s:Envelope>\r\n"
    )
}

/// Reads a SOAP answer: the body on 200, the UPnP error otherwise.
pub fn soap_result(status: u16, body: &str) -> Result<String, NetError> {
    if status == 200 {
        return Ok(body.to_string());
    }
    match element(body, "errorCode") {
        Some(code) => {
            let what = element(body, "errorDescription").unwrap_or("");
            Err(NetError::Refused(
                format!("UPnP error {code} {what}").trim().to_string(),
            ))
        }
        None => Err(NetError::Refused(format!(
            "the router answered HTTP {status}"
        ))),
    }
}

impl Igd {
    async fn call(&self, action: &str, args: &[(&str, String)]) -> Result<String, NetError> {
        let body = envelope(&self.service, action, args);
        let soap_action = format!("\"{}#{action}\"", self.service);
        let answer = http1::exchange(
            "POST",
            &self.control,
            &[
                ("Content-Type", "text/xml; charset=\"utf-8\""),
                ("SOAPAction", &soap_action),
            ],
            &body,
            HTTP_LIMIT,
        )
        .await?;
        soap_result(answer.status, &answer.body)
    }

    /// The router's external address.
    pub async fn external_ip(&self) -> Result<IpAddr, NetError> {
        let body = self.call("GetExternalIPAddress", &[]).await?;
        let text = element(&body, "NewExternalIPAddress").unwrap_or("");
        text.parse::<IpAddr>().map_err(|_| {
            NetError::Refused(format!("the router has no external address yet ({text:?})"))
        })
    }

    /// Maps `external` on the router to `client:internal` for `lease`
    /// seconds (0: until removed).
    pub async fn add_port_mapping(
        &self,
        protocol: Protocol,
        external: u16,
        client: Ipv4Addr,
        internal: u16,
        lease: u32,
        description: &str,
    ) -> Result<(), NetError> {
        self.call(
            "AddPortMapping",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external.to_string()),
                ("NewProtocol", protocol.upnp().into()),
                ("NewInternalPort", internal.to_string()),
                ("NewInternalClient", client.to_string()),
                ("NewEnabled", "1".into()),
                ("NewPortMappingDescription", description.into()),
                ("NewLeaseDuration", lease.to_string()),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Removes the mapping of `external`.
    pub async fn delete_port_mapping(
        &self,
        protocol: Protocol,
        external: u16,
    ) -> Result<(), NetError> {
        self.call(
            "DeletePortMapping",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external.to_string()),
                ("NewProtocol", protocol.upnp().into()),
            ],
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIPTION: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceList><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/ctl/PPP</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>"#;

    #[test]
    fn the_ip_connection_service_is_preferred() {
        assert_eq!(
            connection_service(DESCRIPTION),
            Some((
                "urn:schemas-upnp-org:service:WANIPConnection:1".into(),
                "/ctl/IPConn".into()
            ))
        );
        assert_eq!(connection_service("<root></root>"), None);
    }

    #[test]
    fn ssdp_answers_give_their_location() {
        let a = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLocation: http://10.0.0.1:5000/rootDesc.xml\r\n\r\n";
        assert_eq!(
            location_of(a).as_deref(),
            Some("http://10.0.0.1:5000/rootDesc.xml")
        );
        assert_eq!(
            location_of("NOTIFY * HTTP/1.1\r\nLOCATION: x\r\n\r\n"),
            None
        );
        assert!(m_search(SEARCH_TARGETS[0]).contains("MAN: \"ssdp:discover\""));
    }

    #[test]
    fn soap_answers_and_faults_are_read() {
        let ok = r#"<s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>203.0.113.8</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>"#;
        assert_eq!(element(ok, "NewExternalIPAddress"), Some("203.0.113.8"));
        let fault = r#"<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
        let err = soap_result(500, fault).expect_err("fault");
        assert_eq!(err.to_string(), "UPnP error 718 ConflictInMappingEntry");
        let e = envelope(
            SERVICES[1],
            "DeletePortMapping",
            &[("NewExternalPort", "80".into())],
        );
        assert!(e.contains("<u:DeletePortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"><NewExternalPort>80</NewExternalPort></u:DeletePortMapping>"));
    }
}
