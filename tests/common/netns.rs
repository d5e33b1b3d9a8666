//! Network namespaces for tests with real peers: a home LAN, a router
//! between it and a small "internet", each its own namespace named after
//! the test process, deleted (with the processes started in them) when
//! the [`Lab`] is dropped, also when the test fails.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// One named namespace (`ip netns add`).
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn add(name: String) -> Netns {
        // A namespace left behind by a killed earlier run of the same pid.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }

    /// Runs `cmd args` inside, waiting for it; panics when it fails.
    pub fn run(&self, cmd: &str, args: &[&str]) -> String {
        let out = self.output(cmd, args);
        assert!(
            out.status.success(),
            "{cmd} {args:?} in {}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `cmd args` inside and returns what it did.
    pub fn output(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Starts `cmd args` inside with stdout and stderr to `log`.
    pub fn spawn(&self, cmd: &str, args: &[&str], log: &Path) -> Child {
        let file = std::fs::File::create(log).expect("log file");
        let err = file.try_clone().expect("log file");
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("spawn in namespace")
    }

    /// Moves the calling thread into this namespace: what it connects to
    /// and the processes it starts from now on are inside.
    pub fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Addresses of the lab.
pub const HOME_IP: &str = "192.168.77.2";
pub const ROUTER_LAN_IP: &str = "192.168.77.1";
/// The router's WAN address: outside the ranges miniupnpd treats as
/// reserved (it refuses to map behind one), in namespaces with no link to
/// the real network.
pub const ROUTER_WAN_IP: &str = "100.128.0.1";
pub const INTERNET_IP: &str = "100.128.0.2";

/// home (`h0`) — (`r0`) router (`r1`) — (`i0`) internet; the router
/// forwards and masquerades towards the internet.
pub struct Lab {
    /// Processes started in the namespaces (stopped first).
    pub children: Vec<Child>,
    pub home: Netns,
    pub router: Netns,
    pub internet: Netns,
}

impl Lab {
    pub fn new() -> Lab {
        let id = std::process::id();
        let lab = Lab {
            children: Vec::new(),
            home: Netns::add(format!("hl{id}home")),
            router: Netns::add(format!("hl{id}rtr")),
            internet: Netns::add(format!("hl{id}net")),
        };
        run(
            "ip",
            &[
                "link",
                "add",
                "h0",
                "netns",
                &lab.home.name,
                "type",
                "veth",
                "peer",
                "name",
                "r0",
                "netns",
                &lab.router.name,
            ],
        );
        run(
            "ip",
            &[
                "link",
                "add",
                "r1",
                "netns",
                &lab.router.name,
                "type",
                "veth",
                "peer",
                "name",
                "i0",
                "netns",
                &lab.internet.name,
            ],
        );
        for (ns, dev, addr) in [
            (&lab.home, "h0", format!("{HOME_IP}/24")),
            (&lab.router, "r0", format!("{ROUTER_LAN_IP}/24")),
            (&lab.router, "r1", format!("{ROUTER_WAN_IP}/24")),
            (&lab.internet, "i0", format!("{INTERNET_IP}/24")),
        ] {
            ns.run("ip", &["addr", "add", &addr, "dev", dev]);
            ns.run("ip", &["link", "set", dev, "up"]);
            ns.run("ip", &["link", "set", "lo", "up"]);
        }
        lab.home
            .run("ip", &["route", "add", "default", "via", ROUTER_LAN_IP]);
        lab.router.run("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
        lab
    }

    /// Changes the router's WAN address (a new lease from the provider).
    pub fn change_wan_address(&self, new: &str) {
        self.router.run("ip", &["addr", "flush", "dev", "r1"]);
        self.router
            .run("ip", &["addr", "add", &format!("{new}/24"), "dev", "r1"]);
        // Flows masqueraded to the old address are forgotten.
        let _ = self.router.output("conntrack", &["-F"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
