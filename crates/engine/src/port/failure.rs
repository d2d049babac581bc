//! What a failed start of an app was, in one sentence, from the platform's start report.

use slot_release_azure as az;

/// One sentence for a failed start: what ended, with its status and when, as far as the log says.
pub(super) fn failure_summary(failure: &az::StartFailure, container: bool) -> String {
    let what = if container {
        "the container"
    } else {
        "the startup command"
    };
    match failure {
        az::StartFailure::Exited { status, after, .. } => {
            let status = status.map_or_else(String::new, |s| format!(" with status {s}"));
            let after =
                after.map_or_else(String::new, |d| format!(" after {:.1} s", d.as_secs_f64()));
            format!("{what} exited{status}{after}")
        }
        az::StartFailure::ImagePull { message } => {
            format!("App Service could not pull the image: {message}")
        }
        az::StartFailure::NoAnswer { port } => {
            let port = port.map_or_else(String::new, |p| format!(" on port {p}"));
            format!("{what} did not answer HTTP pings{port}, so App Service failed the site start")
        }
    }
}
