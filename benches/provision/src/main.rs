//! `homeline-bench-provision DATA_DIR USERS_CSV`
//!
//! USERS_CSV: one `username;password[;more fields]` per line (the sipp
//! injection file; a leading `SEQUENTIAL`/`RANDOM`/`USER` line and blank
//! lines are skipped). Creates the data dir's database and secret key if needed and
//! inserts one softphone per line. Run it before starting `homeline run`
//! (the appliance loads the phone table at start).

use std::path::Path;
use std::sync::Arc;

use homeline::store::devices::{self, DeviceFields, DeviceType, SIP_PASSWORD_CONTEXT};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, csv] = args.as_slice() else {
        anyhow::bail!("usage: homeline-bench-provision DATA_DIR USERS_CSV");
    };
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let clock: homeline::clock::SharedClock = Arc::new(homeline::clock::SystemClock);
    let conn = homeline::app::open_database(dir, &clock)?;
    let secrets = homeline::secrets::SecretBox::load_or_create(dir)?;
    let text = std::fs::read_to_string(csv)?;
    let mut n = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || matches!(line, "SEQUENTIAL" | "RANDOM" | "USER") {
            continue;
        }
        let mut fields = line.split(';');
        let (Some(username), Some(password)) = (fields.next(), fields.next()) else {
            anyhow::bail!("bad line (want username;password[;...]): {line}");
        };
        let sealed = secrets.seal(SIP_PASSWORD_CONTEXT, password.as_bytes())?;
        let f = DeviceFields {
            user_id: None,
            name: username,
            username,
            device_type: DeviceType::Softphone,
            recording_enabled: false,
        };
        devices::insert(&conn, &f, &sealed, clock.now())?;
        n += 1;
    }
    println!("provisioned {n} phones in {}", dir.display());
    Ok(())
}
