//! App logs where App Service keeps them: each slot's `/home/LogFiles` holds, per day and instance,
//! `<yyyy_MM_dd>_<instance>_default_docker.log` (what the app process prints, one timestamped line per
//! line) and `<yyyy_MM_dd>_<instance>_docker.log` (the platform's own lines: the container starting,
//! answering, or exiting and failing the site start). Kudu serves them (`crate::kudu_logs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::lock;

/// Where one slot's instance writes its logs, and the names the platform lines use.
#[derive(Debug, Clone)]
pub(crate) struct LogTarget {
    /// The slot's `/home/LogFiles`.
    pub(crate) dir: PathBuf,
    /// The instance (machine) name in the file names, e.g. `lw1sdlwk0A1B2C`.
    pub(crate) machine: String,
    /// The container name in platform lines, e.g. `contoso-web_0_1a2b3c4d`.
    pub(crate) container: String,
    /// The site (`<app>` or `<app>__<slot>`) in platform lines.
    pub(crate) site: String,
    /// Serialises writes, so lines from stdout, stderr and the platform never interleave mid-line.
    pub(crate) guard: Arc<Mutex<()>>,
}

/// The slot's `/home/LogFiles`: under the app's folder, one per slot (each slot has its own
/// file system on App Service).
pub(crate) fn log_dir(app_root: &Path, slot: &str) -> PathBuf {
    app_root.join("slot-home").join(slot).join("LogFiles")
}

/// `yyyy_MM_dd`, the date in App Service's log file names (UTC).
fn day() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}_{:02}_{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// A timestamp as App Service starts each log line with, e.g. `2026-12-05T01:02:03.456Z`.
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

impl LogTarget {
    fn append(&self, suffix: &str, line: &str) {
        let _held = lock(&self.guard);
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let path = self
            .dir
            .join(format!("{}_{}_{suffix}", day(), self.machine));
        // Logging is best effort, as on App Service: a full disk must not take the app down.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{} {line}", stamp());
        }
    }

    /// A line the app printed (`…_default_docker.log`).
    pub(crate) fn app(&self, line: &str) {
        self.append("default_docker.log", line);
    }

    /// A platform line (`…_docker.log`), `level` as App Service writes it (`INFO `, `ERROR`).
    pub(crate) fn platform(&self, level: &str, line: &str) {
        self.append("docker.log", &format!("{level} - {line}"));
    }

    /// Copies every line of an app's stdout or stderr into its log, until the pipe closes. Bytes
    /// that are not UTF-8 are replaced, never a reason to stop reading: an undrained pipe would
    /// block the app.
    pub(crate) async fn pump(self, pipe: impl AsyncRead + Unpin) {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    self.app(line.trim_end_matches(['\n', '\r']));
                }
            }
        }
    }
}

/// The log files of a slot, newest last: (file name, size, modified time RFC 3339).
pub(crate) fn list(dir: &Path) -> Vec<(String, u64, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let meta = e.metadata().ok();
            let modified = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .map(time::OffsetDateTime::from)
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.map_or(0, |m| m.len()),
                modified,
            )
        })
        .collect();
    files.sort();
    files
}
