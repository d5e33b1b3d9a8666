//! The appliance layout read with no flags: the real binary takes its data
//! directory and listeners from the config file named by
//! `HOMELINE_CONFIG_FILE` (on the image, `/etc/homeline/homeline.conf`),
//! a flag still wins over the file, and a bad file stops it with the file
//! and line named.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn write_conf(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("homeline.conf");
    std::fs::write(&path, text).expect("write the config file");
    path
}

fn http_port(data: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(data.join("run/ports.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["http"].as_str()?.parse().ok()
}

fn run(conf: &Path, cwd: &Path, flags: &[&str]) -> Command {
    let mut cmd = common::command();
    cmd.arg("run")
        .args(flags)
        .current_dir(cwd)
        .env("HOMELINE_CONFIG_FILE", conf)
        .env_remove("HOMELINE_DATA_DIR")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null());
    cmd
}

/// Kills the appliance if a test fails while it runs.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn terminate(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = common::wait_exit(child, Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_config_file_gives_the_data_dir_and_listeners_with_no_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("var-lib-homeline");
    let conf = write_conf(
        tmp.path(),
        &format!(
            "# the appliance's layout\n\
             data_dir = {}\n\
             http.listen = 127.0.0.1:0\n\
             \n\
             sip.listen = 127.0.0.1:0\n\
             sip.tls_listen = 127.0.0.1:0\n\
             log.target = stderr\n",
            data.display()
        ),
    );
    let log = std::fs::File::create(tmp.path().join("server.log")).unwrap();
    let mut child = Guard(run(&conf, tmp.path(), &[]).stderr(log).spawn().unwrap());
    let http = common::wait_for(Duration::from_secs(20), || http_port(&data));
    let server_log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default();
    let Some(http) = http else {
        panic!("no ports.json in the file's data dir; log:\n{server_log}");
    };
    assert!(http.ip().is_loopback() && http.port() != 0);
    assert!(
        data.join("homeline.db").exists(),
        "the database is in the file's data dir"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "the built-in ./data is not used"
    );
    let r = common::request(http, "GET", "/health", &[], b"");
    assert_eq!(r.status, 200);
    terminate(&mut child.0);

    // `migrate` reads the data dir from the same file.
    let out = common::command()
        .arg("migrate")
        .current_dir(tmp.path())
        .env("HOMELINE_CONFIG_FILE", &conf)
        .env_remove("HOMELINE_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&data.display().to_string()));
}

#[test]
fn a_flag_beats_the_file_and_the_file_beats_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    // The file's HTTP address would be port 1; the flag moves it.
    let conf = write_conf(
        tmp.path(),
        &format!(
            "data_dir = {}\nhttp.listen = 127.0.0.1:1\nsip.listen = 127.0.0.1:0\nsip.tls_listen =\n",
            data.display()
        ),
    );
    let mut child = run(
        &conf,
        tmp.path(),
        &["--http-listen", "127.0.0.1:0", "--log-target", "stderr"],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let http = common::wait_for(Duration::from_secs(20), || http_port(&data));
    terminate(&mut child);
    let http = http.expect("started with the flag's address");
    assert_ne!(http.port(), 1, "the flag wins over the file");
    let ports = std::fs::read_to_string(data.join("run/ports.json")).unwrap_or_default();
    assert!(
        !ports.contains("sip_tls"),
        "the file turned SIP over TLS off (default: on): {ports}"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, words) in [
        (
            "# comment\nhttp.listen = 127.0.0.1:0\nhttp.lisen = 127.0.0.1:0\n",
            vec!["line 3", "unknown setting \"http.lisen\""],
        ),
        ("mdns.enabled\n", vec!["line 1", "expected `key = value`"]),
        (
            "\nhttp.listen = eighty\n",
            vec!["http.listen", "\"eighty\"", "config file", "line 2"],
        ),
    ] {
        let conf = write_conf(tmp.path(), text);
        let out = run(&conf, tmp.path(), &["--log-target", "stderr"])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?} was accepted");
        assert!(
            err.contains(&conf.display().to_string()) && words.iter().all(|w| err.contains(w)),
            "{text:?}: {err}"
        );
    }
    // A missing file is no error.
    let out = common::command()
        .args(["migrate", "--data-dir"])
        .arg(tmp.path().join("d"))
        .env("HOMELINE_CONFIG_FILE", tmp.path().join("absent.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
