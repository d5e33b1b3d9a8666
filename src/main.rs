//! The `homeline` command: run the appliance, migrate, recover an account.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};

use homeline::accounts::{lockout, password};
use homeline::clock::{SharedClock, SystemClock};
use homeline::settings::RawInputs;
use homeline::store::{self, users, Db};
use homeline::{app, logging, watchdog};

/// Homeline: a home phone system bridging SIP phones to Twilio.
#[derive(Parser)]
#[command(name = "homeline", disable_version_flag = true)]
struct Cli {
    /// Data directory [env: HOMELINE_DATA_DIR] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (web UI, API and services) until SIGTERM.
    Run(RunArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the version.
    Version,
    /// Check every link from a caller to the phones and say what to fix.
    /// Exit code: 0 all ok, 1 warnings, 2 errors.
    Doctor {
        /// Print the report as JSON (as `GET /api/diagnostics` answers).
        #[arg(long)]
        json: bool,
    },
    /// Console recovery tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args)]
struct RunArgs {
    /// HTTP listen address [env: HOMELINE_HTTP_LISTEN] [default: 0.0.0.0:8080]
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<String>,
    /// SIP listen address [env: HOMELINE_SIP_LISTEN] [default: 0.0.0.0:5060]
    #[arg(long, value_name = "ADDR")]
    sip_listen: Option<String>,
    /// SIP over TLS listen address, empty for none [env: HOMELINE_SIP_TLS_LISTEN] [default: 0.0.0.0:5061]
    #[arg(long, value_name = "ADDR")]
    sip_tls_listen: Option<String>,
    /// Log filter [env: HOMELINE_LOG_LEVEL] [default: info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// auto, journald or stderr [env: HOMELINE_LOG_TARGET] [default: auto]
    #[arg(long, value_name = "TARGET")]
    log_target: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a new password for an account and print it (or read it from stdin).
    ResetPassword {
        /// The account's e-mail.
        #[arg(long)]
        email: String,
        /// Read the new password from the first line of standard input instead
        /// of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("homeline: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut flags: BTreeMap<&'static str, String> = BTreeMap::new();
    if let Some(d) = cli.data_dir {
        flags.insert("data_dir", d);
    }
    let clock: SharedClock = Arc::new(SystemClock);
    let done: anyhow::Result<()> = match cli.command {
        Command::Version => {
            println!(
                "homeline {} (git {}, sqlite {})",
                homeline::VERSION,
                homeline::GIT_REV,
                rusqlite::version()
            );
            Ok(())
        }
        Command::Doctor { json } => return Ok(doctor(flags, clock.now(), json)),
        Command::Migrate => {
            let inputs = RawInputs::from_process_env(flags)?;
            let dir = inputs.data_dir();
            app::prepare_data_dir(&dir)?;
            let mut conn = store::open_connection(&dir.join("homeline.db"))?;
            let applied = store::migrate::apply(&mut conn, clock.as_ref())?;
            for m in &applied {
                println!("applied {:03}_{}", m.version, m.name);
            }
            println!(
                "database {} is at migration {:03}",
                dir.join("homeline.db").display(),
                store::migrate::current_version(&conn)?
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::ResetPassword {
                    email,
                    password_stdin,
                },
        } => {
            let inputs = RawInputs::from_process_env(flags)?;
            reset_password(&inputs, &clock, &email, password_stdin)
        }
        Command::Run(args) => {
            for (key, value) in [
                ("http.listen", args.http_listen),
                ("sip.listen", args.sip_listen),
                ("sip.tls_listen", args.sip_tls_listen),
                ("log.level", args.log_level),
                ("log.target", args.log_target),
            ] {
                if let Some(v) = value {
                    flags.insert(key, v);
                }
            }
            let inputs = RawInputs::from_process_env(flags)?;
            // Logging starts before the database is open; the `config` table
            // may still change the level once it is read.
            let early = inputs.resolve(&BTreeMap::new())?;
            let log = logging::init(&early.log_level, early.log_target, inputs.under_systemd);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            runtime.block_on(app::run(
                inputs,
                clock,
                log,
                Arc::new(watchdog::SdNotifier),
                shutdown_signal(),
            ))
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `homeline doctor`: the report on stdout, its status as the exit code.
fn doctor(
    flags: BTreeMap<&'static str, String>,
    now: homeline::clock::Timestamp,
    json: bool,
) -> ExitCode {
    let report = match RawInputs::from_process_env(flags) {
        Ok(inputs) => homeline::doctor::local::run_from_data_dir(&inputs, now),
        // A broken config file is a finding like any other.
        Err(e) => homeline::doctor::Report::new(
            vec![homeline::doctor::Check::error(
                "settings",
                "Settings",
                e.to_string(),
                "Correct the line named in the config file (/etc/homeline/homeline.conf).",
            )],
            now,
        ),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("homeline: error: {e}"),
        }
    } else {
        print!("{}", homeline::doctor::local::render(&report));
    }
    ExitCode::from(report.exit_code())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

fn reset_password(
    inputs: &RawInputs,
    clock: &SharedClock,
    email: &str,
    from_stdin: bool,
) -> anyhow::Result<()> {
    let new_password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        password::check_policy(&pw)?;
        pw
    } else {
        password::generate()?
    };
    let hash = password::hash(&new_password)?;
    let conn = app::open_database(&inputs.data_dir(), clock)?;
    let (db, thread) = Db::start(conn);
    let (email_owned, now) = (email.to_string(), clock.now());
    let result = db.call_blocking(move |c| {
        let Some(user) = users::find_by_email(c, &email_owned)? else {
            return Ok(None);
        };
        users::set_password_hash(c, user.id, &hash, now)?;
        // The console is the way back in: lift the account's login lockout too.
        lockout::clear_account(c, &user.email)?;
        Ok(Some(user))
    });
    thread.close(&db);
    match result? {
        None => bail!("no account with e-mail {email:?}"),
        Some(user) if from_stdin => println!("password of {} ({}) changed", user.email, user.role),
        Some(user) => println!(
            "new password of {} ({}): {new_password}",
            user.email, user.role
        ),
    }
    Ok(())
}
