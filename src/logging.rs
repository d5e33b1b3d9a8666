//! Logging: journald when running under systemd, stderr otherwise, with the
//! level taken from settings and changeable once the `config` table is read.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::settings::LogTarget;

/// Changes the log filter after startup (when the `config` table sets it).
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Replaces the filter; an invalid directive leaves the old one.
    pub fn set_level(&self, directives: &str) {
        match EnvFilter::try_new(directives) {
            Ok(f) => {
                if let Err(e) = self.filter.reload(f) {
                    tracing::warn!(error = %e, "could not change the log level");
                }
            }
            Err(e) => tracing::warn!(error = %e, directives, "invalid log level ignored"),
        }
    }
}

/// Installs the global subscriber. `under_systemd` decides `Auto`.
pub fn init(level: &str, target: LogTarget, under_systemd: bool) -> LogHandle {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let journald = match target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => under_systemd,
    };
    let journal_layer = if journald {
        tracing_journald::layer().ok()
    } else {
        None
    };
    let fallback = journald && journal_layer.is_none();
    let output: Box<dyn Layer<_> + Send + Sync> = match journal_layer {
        Some(j) => Box::new(j.with_syslog_identifier("homeline".to_string())),
        None => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(true),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
    if fallback {
        tracing::warn!("journald socket unavailable; logging to stderr");
    }
    LogHandle { filter: handle }
}
