//! The config file (`/etc/homeline/homeline.conf` on the image): the
//! image's baseline, below the `config` table in precedence.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::specs::SPECS;

/// Environment variable naming the config file; set but empty means none.
pub const CONFIG_FILE_ENV: &str = "HOMELINE_CONFIG_FILE";
/// Where the config file is looked for when [`CONFIG_FILE_ENV`] is unset
/// (the appliance image installs it there).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/homeline/homeline.conf";

/// The values of a config file: `key = value` lines with [`SPECS`] keys;
/// blank lines and lines starting with `#` are ignored. Values are taken
/// as written (trimmed); there are no quotes and no comments after a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it was read from (named in error messages).
    pub path: PathBuf,
    /// Each value with the number of the line it is on.
    pub values: BTreeMap<&'static str, (String, usize)>,
}

/// The config file cannot be used: the program refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// It exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a known `key = value`.
    #[error("config file {path}, line {line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigFile {
    /// Reads `path`; `Ok(None)` if there is no such file.
    pub fn load(path: &std::path::Path) -> Result<Option<ConfigFile>, ConfigFileError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| ConfigFileError::BadLine {
                    path: path.to_path_buf(),
                    line: line_of(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
                    reason: "not UTF-8 text".into(),
                })?;
                ConfigFile::parse(path, &text).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigFileError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of a config file read from `path`.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<ConfigFile, ConfigFileError> {
        let mut values: BTreeMap<&'static str, (String, usize)> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |reason: String| ConfigFileError::BadLine {
                path: path.to_path_buf(),
                line,
                reason,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(bad(format!(
                    "expected `key = value` or a `#` comment, found {trimmed:?}"
                )));
            };
            let key = key.trim();
            let Some(spec) = SPECS.iter().find(|s| s.key == key) else {
                return Err(bad(format!(
                    "unknown setting {key:?} (the keys are those of the configuration reference, e.g. http.listen)"
                )));
            };
            if let Some((_, first)) = values.get(spec.key) {
                return Err(bad(format!("{key} is already set on line {first}")));
            }
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad(format!(
                    "the value of {key} contains control characters"
                )));
            }
            values.insert(spec.key, (value.trim().to_string(), line));
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
        })
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }
}

/// The line number of the end of `prefix` (1-based).
fn line_of(prefix: &[u8]) -> usize {
    prefix.iter().filter(|b| **b == b'\n').count() + 1
}
