//! The router part against real peers in network namespaces: Debian's
//! `miniupnpd` (UPnP-IGD and NAT-PMP, with nftables) as the home router,
//! coturn's `turnserver` in STUN-only mode on the "internet" side, and the
//! real binary in the home LAN. Proves: the public address found by STUN and
//! from the IGD; the forwards created, renewed (short lease) and removed at
//! miniupnpd; a new WAN address reflected in the next call's SDP towards
//! Twilio and in the DuckDNS update. Needs root (CI runs as root).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::calls::{kitchen_dials_out, start_household};
use common::netns::{Lab, HOME_IP, INTERNET_IP, ROUTER_WAN_IP};
use common::{free_udp_port, is_root, setup_admin, wait_for};
use serde_json::json;

const NEW_WAN_IP: &str = "100.128.0.77";

fn tools_present() -> bool {
    ["miniupnpd", "turnserver", "upnpc", "nft", "sipp"]
        .iter()
        .all(|t| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The router's nftables skeleton miniupnpd adds its rules to (as its
/// `nft_init.sh` makes it), plus the masquerading of a home router.
const NFT: &str = r#"table inet filter {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname "r1" masquerade; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
"#;

fn miniupnpd_conf() -> String {
    format!(
        "ext_ifname=r1\nlistening_ip=r0\nhttp_port=0\nenable_natpmp=yes\nenable_upnp=yes\nsecure_mode=yes\nsystem_uptime=yes\n\
         uuid=3c9ec58d-8d1e-4a4e-9c55-2f1c2b3d4e5f\n\
         upnp_table_name=filter\nupnp_nat_table_name=filter\nupnp_forward_chain=miniupnpd\n\
         upnp_nat_chain=prerouting_miniupnpd\nupnp_nat_postrouting_chain=postrouting_miniupnpd\n\
         allow 1-65535 {HOME_IP}/32 1-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
    )
}

/// The mappings miniupnpd holds, as its UPnP client lists them (each
/// "external->internal" line).
fn upnp_list(lab: &Lab) -> Vec<String> {
    let out = lab.home.output("upnpc", &["-l"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("->{HOME_IP}:")))
        .map(|l| l.trim().to_string())
        .collect()
}

/// A DuckDNS stand-in on the home LAN's loopback: answers OK, keeps the
/// request lines.
fn duckdns_stand_in() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/update", l.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            keep.lock()
                .expect("lock")
                .push(text.lines().next().unwrap_or("").to_string());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (url, seen)
}

#[test]
fn public_address_forwards_and_the_next_calls_sdp_follow_the_router() {
    if !is_root() {
        eprintln!("router test: needs root for network namespaces; skipped");
        return;
    }
    assert!(
        tools_present(),
        "install miniupnpd-nftables, coturn, miniupnpc, nftables and sip-tester (make test-deps)"
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut lab = Lab::new();

    // The router: nftables skeleton, then miniupnpd on the LAN side.
    let nft = scratch.path().join("router.nft");
    std::fs::write(&nft, NFT).expect("nft file");
    lab.router.run("nft", &["-f", nft.to_str().expect("path")]);
    let conf = scratch.path().join("miniupnpd.conf");
    std::fs::write(&conf, miniupnpd_conf()).expect("conf");
    let pid = scratch.path().join("miniupnpd.pid");
    let upnp_log = scratch.path().join("miniupnpd.log");
    let child = lab.router.spawn(
        "miniupnpd",
        &[
            "-d",
            "-f",
            conf.to_str().expect("p"),
            "-P",
            pid.to_str().expect("p"),
        ],
        &upnp_log,
    );
    lab.children.push(child);
    // The internet: a STUN server.
    let turn_log = scratch.path().join("turnserver.log");
    let child = lab.internet.spawn(
        "turnserver",
        &[
            "--stun-only",
            &format!("--listening-ip={INTERNET_IP}"),
            "--listening-port=3478",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--log-file=stdout",
            "--simple-log",
        ],
        &turn_log,
    );
    lab.children.push(child);

    // Everything below runs in the home LAN (this thread and its children).
    lab.home.enter();
    std::thread::sleep(Duration::from_millis(800));
    let (duck_url, duck_seen) = duckdns_stand_in();
    let edge = free_udp_port();
    let mut h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "20000-20003",
        &[
            ("HOMELINE_NET_DISCOVER_PUBLIC_IP", "true"),
            ("HOMELINE_NET_STUN_SERVER", &format!("{INTERNET_IP}:3478")),
            ("HOMELINE_NET_DUCKDNS_URL", &duck_url),
            ("HOMELINE_NET_CHECK_INTERVAL_SECS", "3600"),
            ("HOMELINE_NET_MAPPING_LEASE_SECS", "6"),
            ("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}")),
        ],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let log = || std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    let upnp_text = || std::fs::read_to_string(&upnp_log).unwrap_or_default();

    // 1. The public address, by STUN and from the IGD.
    let r = h.call("POST", "/api/network/refresh", Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let net = r.json();
    assert_eq!(net["public_ip"], ROUTER_WAN_IP, "{net}\n{}", log());
    assert_eq!(net["source"], "upnp", "{net}");
    let method = |n: &serde_json::Value, m: &str| {
        n["methods"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["method"] == m).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        method(&net, "stun")["ip"],
        ROUTER_WAN_IP,
        "STUN: {net}\n{}",
        std::fs::read_to_string(&turn_log).unwrap_or_default()
    );
    assert_eq!(method(&net, "upnp")["ip"], ROUTER_WAN_IP, "IGD: {net}");
    assert_eq!(net["auto_forward"], false);
    assert!(
        upnp_list(&lab).is_empty(),
        "nothing mapped before the admin agreed"
    );

    // 2. The admin agrees: the forwards are created at miniupnpd.
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"router": {"auto_forward": true}, "ddns": {"provider": "duckdns", "domain": "myhome", "token": "tok-1"}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let net = h
        .call("POST", "/api/network/refresh", Some(&admin), None)
        .json();
    let states: Vec<(String, String)> = net["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("sip-tls".to_string(), "ok".to_string()),
            ("rtp".to_string(), "ok".to_string()),
            ("http".to_string(), "ok".to_string())
        ],
        "{net}\n{}",
        upnp_text()
    );
    let listed = upnp_list(&lab);
    assert_eq!(listed.len(), 6, "5061, 20000-20003 and 80: {listed:?}");
    for port in ["5061", "20000", "20003", "80"] {
        assert!(
            listed.iter().any(|l| l.contains(&format!(" {port}->"))),
            "{port} in {listed:?}"
        );
    }
    assert!(
        upnp_text().contains("leaseduration=6"),
        "asked with the short lease"
    );
    // And DuckDNS was told.
    let seen = wait_for(Duration::from_secs(5), || {
        let s = duck_seen.lock().expect("lock").clone();
        s.iter()
            .any(|l| l.contains(&format!("ip={ROUTER_WAN_IP}")))
            .then_some(s)
    })
    .expect("DuckDNS updated");
    assert!(
        seen[0].starts_with("GET /update?domains=myhome&token=tok-1&ip="),
        "{seen:?}"
    );

    // 3. Renewed: after two leases the mappings are still there.
    std::thread::sleep(Duration::from_secs(13));
    let listed = upnp_list(&lab);
    assert_eq!(
        listed.len(),
        6,
        "renewed before the 6 s lease ended: {listed:?}\n{}",
        upnp_text()
    );
    let renewals = upnp_text().matches("AddPortMapping: ext port 5061").count();
    assert!(renewals >= 3, "{renewals} requests for 5061");

    // 4. The provider gives the router a new address: the next check finds
    //    it and the next call offers it to Twilio.
    lab.change_wan_address(NEW_WAN_IP);
    let net = h
        .call("POST", "/api/network/refresh", Some(&admin), None)
        .json();
    assert_eq!(net["public_ip"], NEW_WAN_IP, "{net}");
    assert_eq!(method(&net, "stun")["ip"], NEW_WAN_IP, "{net}");
    let tout = kitchen_dials_out(&h, edge, 22410, 22510, 1000);
    assert!(
        tout.contains(&format!("c=IN IP4 {NEW_WAN_IP}")),
        "the INVITE's SDP names the new address: {tout}"
    );
    assert!(
        !tout.contains(&format!("c=IN IP4 {ROUTER_WAN_IP}")),
        "{tout}"
    );
    wait_for(Duration::from_secs(5), || {
        duck_seen
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(&format!("ip={NEW_WAN_IP}")))
            .then_some(())
    })
    .expect("DuckDNS follows the new address");

    // 5. Turned off: removed at the router, shown as off.
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"router": {"auto_forward": false}})),
    );
    assert_eq!(r.status, 200);
    let net = h
        .call("POST", "/api/network/refresh", Some(&admin), None)
        .json();
    assert!(
        net["mappings"]
            .as_array()
            .expect("m")
            .iter()
            .all(|m| m["status"] == "off"),
        "{net}"
    );
    assert!(upnp_list(&lab).is_empty(), "removed: {:?}", upnp_list(&lab));

    // 6. On again, then a clean shutdown removes them too.
    h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"router": {"auto_forward": true}})),
    );
    h.call("POST", "/api/network/refresh", Some(&admin), None);
    assert_eq!(upnp_list(&lab).len(), 6);
    assert!(h.terminate(Duration::from_secs(20)).success());
    assert!(
        upnp_list(&lab).is_empty(),
        "removed at shutdown: {:?}",
        upnp_list(&lab)
    );
}

/// Settings → Router & address in Debian's Chromium (`ui/tests/network.spec.cjs`,
/// playwright-core + axe-core, screenshots at 390×844 and 1280×800 in
/// `target/browser-shots/network/`), in a namespace with loopback only: no
/// router answers, so the forwards are reported as not supported, and the
/// DuckDNS update goes to a closed loopback port and fails visibly.
#[test]
fn the_network_page_shows_the_forwards_and_the_dns_name_in_a_browser() {
    const TEST: &str = "the_network_page_shows_the_forwards_and_the_dns_name_in_a_browser";
    if common::rerun_in_private_netns(TEST) {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for m in ["playwright-core", "axe-core"] {
        assert!(
            root.join("ui/node_modules").join(m).is_dir(),
            "ui/node_modules/{m} is missing: run `cd ui && npm ci` (make test-deps does)"
        );
    }
    let h = common::Homeline::start_with(common::Start {
        env: vec![
            ("HOMELINE_NET_DISCOVER_PUBLIC_IP".into(), "true".into()),
            ("HOMELINE_NET_STUN_SERVER".into(), "127.0.0.1:9".into()),
            (
                "HOMELINE_NET_DUCKDNS_URL".into(),
                "http://127.0.0.1:9/update".into(),
            ),
            ("HOMELINE_MEDIA_RTP_PORTS".into(), "20100-20103".into()),
        ],
        ..common::Start::default()
    });
    let admin = setup_admin(&h, "mum@x.org", "blue kettle on the hob");
    let shots = root.join("target/browser-shots/network");
    let _ = std::fs::remove_dir_all(&shots);
    let out = std::process::Command::new("timeout")
        .args(["200", "node", "tests/network.spec.cjs"])
        .current_dir(root.join("ui"))
        .env("BASE_URL", format!("http://{}", h.http))
        .env("SHOTS_DIR", &shots)
        .env("ADMIN_EMAIL", "mum@x.org")
        .env("ADMIN_PASSWORD", "blue kettle on the hob")
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or("(no summary)");
    assert!(
        out.status.success(),
        "the network scenario failed:\n{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the page saved and what the service made of it.
    let net = h.call("GET", "/api/network", Some(&admin), None).json();
    assert_eq!(net["auto_forward"], true, "{net}");
    assert!(
        net["mappings"]
            .as_array()
            .expect("m")
            .iter()
            .all(|m| m["status"] == "unsupported"),
        "{net}"
    );
    assert_eq!(net["ddns"]["status"], "failed", "{net}");
    let alerts = h
        .call("GET", "/api/system/alerts", Some(&admin), None)
        .json();
    assert!(
        alerts.to_string().contains("dynamic DNS"),
        "the failure is alerted: {alerts}"
    );
}
