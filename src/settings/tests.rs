//! The settings' unit tests: precedence, validation, the config file.

use super::*;

fn inputs(flags: &[(&'static str, &str)], env: &[(&str, &str)]) -> RawInputs {
    RawInputs {
        flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        under_systemd: false,
        file: None,
    }
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(std::path::Path::new("/etc/homeline/homeline.conf"), text)
        .expect("valid file")
}

#[test]
fn the_file_sits_between_the_table_and_the_defaults() {
    let mut raw = inputs(
        &[("sip.listen", "127.0.0.1:9")],
        &[("HOMELINE_LOG_LEVEL", "warn")],
    );
    raw.file = Some(file(
        "# the image's layout\n\n  data_dir = /var/lib/homeline\nhttp.listen=0.0.0.0:80\nsip.listen = 0.0.0.0:5060\nlog.level = debug\nmdns.enabled = true\nstorage.min_free_mib = 64\n",
    ));
    let db = BTreeMap::from([("storage.min_free_mib".to_string(), "128".to_string())]);
    let s = raw.resolve(&db).expect("valid");
    assert_eq!(raw.data_dir(), PathBuf::from("/var/lib/homeline"));
    assert_eq!(
        (s.data_dir.to_str(), s.sources["data_dir"]),
        (Some("/var/lib/homeline"), Source::File)
    );
    assert_eq!(
        (s.http_listen.port(), s.sources["http.listen"]),
        (80, Source::File)
    );
    assert_eq!(
        (s.sip_listen.port(), s.sources["sip.listen"]),
        (9, Source::Flag)
    );
    assert_eq!(
        (s.log_level.as_str(), s.sources["log.level"]),
        ("warn", Source::Env)
    );
    assert_eq!(
        (s.storage_min_free_mib, s.sources["storage.min_free_mib"]),
        (128, Source::Database)
    );
    assert!(s.mdns.enabled);
    assert_eq!(
        (s.mdns.hostname.as_str(), s.sources["mdns.hostname"]),
        ("homeline", Source::Default)
    );
    assert_eq!(s.fallback("http.listen"), "0.0.0.0:80");
    assert_eq!(s.fallback("sip.tls_only"), "false");
}

#[test]
fn bad_file_lines_name_the_file_and_line() {
    let path = std::path::Path::new("/etc/homeline/homeline.conf");
    for (text, line, words) in [
        (
            "http.listen = 0.0.0.0:80\nhttp.lisen = 1\n",
            2,
            "unknown setting \"http.lisen\"",
        ),
        ("# c\nmdns.enabled true\n", 2, "expected `key = value`"),
        (
            "mdns.enabled = true\nmdns.enabled = false\n",
            2,
            "already set on line 1",
        ),
        ("= true\n", 1, "unknown setting \"\""),
    ] {
        let err = ConfigFile::parse(path, text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/etc/homeline/homeline.conf")
                && msg.contains(&format!("line {line}"))
                && msg.contains(words),
            "{msg}"
        );
    }
    let mut raw = inputs(&[], &[]);
    raw.file = Some(file("\n\nhttp.listen = port80\n"));
    let msg = raw.resolve(&BTreeMap::new()).unwrap_err().to_string();
    assert!(
        msg.contains("config file") && msg.contains("homeline.conf, line 3"),
        "{msg}"
    );
}

#[test]
fn a_missing_file_is_no_error_and_others_are() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        ConfigFile::load(&dir.path().join("none.conf")).unwrap(),
        None
    );
    let bin = dir.path().join("bin.conf");
    std::fs::write(&bin, b"log.level = info\n\xff\n").unwrap();
    let msg = ConfigFile::load(&bin).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("UTF-8"), "{msg}");
    let msg = ConfigFile::load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("cannot read config file"), "{msg}");
}

#[test]
fn the_image_file_is_valid() {
    let text = include_str!("../../image/files/etc/homeline/homeline.conf");
    let mut raw = inputs(&[], &[]);
    raw.file = Some(file(text));
    let s = raw
        .resolve(&BTreeMap::new())
        .expect("the image's config file is valid");
    assert_eq!(s.data_dir, PathBuf::from("/var/lib/homeline"));
    assert_eq!(s.http_listen.port(), 80);
    assert!(s.mdns.enabled);
    let from_file = s.sources.values().filter(|v| **v == Source::File).count();
    assert_eq!(from_file, 5, "every line of the file is used");
}

#[test]
fn mdns_hostname_is_one_label() {
    let s = inputs(&[], &[("HOMELINE_MDNS_HOSTNAME", "Kitchen-Pi")])
        .resolve(&BTreeMap::new())
        .unwrap();
    assert_eq!(s.mdns.hostname, "kitchen-pi");
    assert!(!s.mdns.enabled);
    for bad in ["", "homeline.local", "-x", "x-", "a b", &"x".repeat(64)] {
        assert!(
            inputs(&[], &[("HOMELINE_MDNS_HOSTNAME", bad)])
                .resolve(&BTreeMap::new())
                .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let s = inputs(&[], &[])
        .resolve(&BTreeMap::new())
        .expect("defaults are valid");
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert_eq!(s.http_listen.to_string(), "0.0.0.0:8080");
    assert_eq!(s.sip_listen.to_string(), "0.0.0.0:5060");
    assert_eq!(s.log_target, LogTarget::Auto);
    assert_eq!(s.storage_min_free_mib, DEFAULT_STORAGE_MIN_FREE_MIB);
    assert!(s.sources.values().all(|src| *src == Source::Default));
}

#[test]
fn flag_beats_env_beats_table_beats_default() {
    let db: BTreeMap<String, String> = [
        ("http.listen", "127.0.0.1:3"),
        ("sip.listen", "127.0.0.1:4"),
        ("log.level", "debug"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let raw = inputs(
        &[("http.listen", "127.0.0.1:1")],
        &[
            ("HOMELINE_HTTP_LISTEN", "127.0.0.1:2"),
            ("HOMELINE_SIP_LISTEN", "127.0.0.1:5"),
        ],
    );
    let s = raw.resolve(&db).expect("valid");
    assert_eq!(
        (s.http_listen.port(), s.sources["http.listen"]),
        (1, Source::Flag)
    );
    assert_eq!(
        (s.sip_listen.port(), s.sources["sip.listen"]),
        (5, Source::Env)
    );
    assert_eq!(
        (s.log_level.as_str(), s.sources["log.level"]),
        ("debug", Source::Database)
    );
    assert_eq!(s.sources["log.target"], Source::Default);
}

#[test]
fn tls_settings_come_together() {
    let s = inputs(&[], &[("HOMELINE_SIP_TLS_ONLY", "true")])
        .resolve(&BTreeMap::new())
        .expect("valid");
    assert!(s.sip_tls_only && s.sip_tls_listen.is_some() && s.sip_tls_files.is_none());
    let err = inputs(&[], &[("HOMELINE_SIP_TLS_CERT", "/x.pem")])
        .resolve(&BTreeMap::new())
        .unwrap_err();
    assert_eq!(err.key, "sip.tls_cert");
    let err = inputs(
        &[],
        &[
            ("HOMELINE_SIP_TLS_ONLY", "true"),
            ("HOMELINE_SIP_TLS_LISTEN", ""),
        ],
    )
    .resolve(&BTreeMap::new())
    .unwrap_err();
    assert_eq!(err.key, "sip.tls_only");
    assert!(inputs(&[], &[("HOMELINE_SIP_TLS_LISTEN", "")])
        .resolve(&BTreeMap::new())
        .expect("off")
        .sip_tls_listen
        .is_none());
}

#[test]
fn data_dir_cannot_come_from_the_table() {
    let db = BTreeMap::from([("data_dir".to_string(), "/elsewhere".to_string())]);
    let s = inputs(&[], &[]).resolve(&db).expect("valid");
    assert_eq!(s.data_dir, PathBuf::from("./data"));
}

#[test]
fn invalid_values_name_key_value_and_source() {
    let err = inputs(&[], &[("HOMELINE_HTTP_LISTEN", "localhost")])
        .resolve(&BTreeMap::new())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("http.listen") && msg.contains("\"localhost\"") && msg.contains("environment"),
        "{msg}"
    );
    let err = inputs(&[("log.level", "loud")], &[])
        .resolve(&BTreeMap::new())
        .unwrap_err();
    assert_eq!((err.key, err.origin), ("log.level", Source::Flag));
    assert!(inputs(&[("log.level", "info,homeline::http=debug")], &[])
        .resolve(&BTreeMap::new())
        .is_ok());
    assert!(inputs(&[("log.level", "info,hyper=")], &[])
        .resolve(&BTreeMap::new())
        .is_err());
    let err = inputs(&[], &[("HOMELINE_LOG_TARGET", "syslog")])
        .resolve(&BTreeMap::new())
        .unwrap_err();
    assert_eq!(err.key, "log.target");
}

#[test]
fn trusted_proxy_and_twilio_base() {
    let s = inputs(&[], &[])
        .resolve(&BTreeMap::new())
        .expect("defaults");
    assert_eq!(s.http_trusted_proxy, None, "no proxy is trusted by default");
    assert_eq!(s.twilio_api_base, "https://api.twilio.com");
    let s = inputs(
        &[],
        &[
            ("HOMELINE_HTTP_TRUSTED_PROXY", "192.168.1.2"),
            ("HOMELINE_TWILIO_API_BASE", "http://127.0.0.1:9/"),
        ],
    )
    .resolve(&BTreeMap::new())
    .expect("valid");
    assert_eq!(s.http_trusted_proxy, "192.168.1.2".parse().ok());
    assert_eq!(s.twilio_api_base, "http://127.0.0.1:9");
    for (var, bad) in [
        ("HOMELINE_HTTP_TRUSTED_PROXY", "192.168.1.2:80"),
        ("HOMELINE_HTTP_TRUSTED_PROXY", "proxy.lan"),
        ("HOMELINE_TWILIO_API_BASE", "api.twilio.com"),
        ("HOMELINE_TWILIO_API_BASE", "https://user:pw@api.twilio.com"),
        ("HOMELINE_TWILIO_API_BASE", "https://"),
    ] {
        assert!(
            inputs(&[], &[(var, bad)])
                .resolve(&BTreeMap::new())
                .is_err(),
            "{var}={bad}"
        );
    }
}

#[test]
fn twilio_sources_and_modes() {
    let r = IpRanges::parse("54.172.60.0/30, 127.0.0.1, 2001:db8::/32").unwrap();
    for (ip, inside) in [
        ("54.172.60.3", true),
        ("54.172.60.4", false),
        ("127.0.0.1", true),
        ("127.0.0.2", false),
        ("2001:db8::5", true),
        ("2001:db9::5", false),
    ] {
        assert_eq!(r.contains(ip.parse().unwrap()), inside, "{ip}");
    }
    assert!(IpRanges::parse("10.0.0.0/33").is_err());
    assert!(IpRanges::parse("twilio").is_err());
    let err = inputs(&[("twilio.sip_mode", "trunk")], &[])
        .resolve(&BTreeMap::new())
        .unwrap_err();
    assert_eq!(
        err.key, "twilio.sip_mode",
        "trunk mode without sources is refused"
    );
    let s = inputs(
        &[
            ("twilio.sip_mode", "trunk"),
            ("twilio.sip_sources", "10.1.0.0/16"),
        ],
        &[],
    )
    .resolve(&BTreeMap::new())
    .unwrap();
    assert!(s.twilio_sip.trunking && s.twilio_sip.sources.contains("10.1.2.3".parse().unwrap()));
}

#[test]
fn readme_documents_every_setting() {
    let readme = include_str!("../../README.md");
    for spec in SPECS {
        assert!(
            readme.contains(spec.env),
            "README.md does not document {}",
            spec.env
        );
        assert!(
            readme.contains(&format!("`{}`", spec.key)),
            "README.md does not document key {}",
            spec.key
        );
    }
}
