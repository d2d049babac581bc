//! Run from package on Kudu (`WEBSITE_RUN_FROM_PACKAGE=1`): the zips Kudu keeps in
//! `/home/data/SitePackages`, the one `packagename.txt` names, and pointing it at another kept zip,
//! which the site runs after its next restart.

use super::Kudu;
use crate::client::{Call, parse_json};
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

const DIR: &str = "api/vfs/data/SitePackages/";

/// What `/home/data/SitePackages` of a slot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePackages {
    /// The zip `packagename.txt` names: the one the site runs.
    pub active: Option<String>,
    /// The kept zips, newest first (Kudu names them by their UTC upload time).
    pub zips: Vec<String>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
}

/// A kept package's name is a plain file name ending in `.zip`: nothing that walks out of the folder.
fn valid_name(name: &str) -> bool {
    name.ends_with(".zip")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Refuses a name that is not a kept package's before it goes into a Kudu path.
fn checked(name: &str) -> Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    Err(AzureError::invalid(
        "package name",
        name,
        "a kept package is a .zip file name",
    ))
}

/// Where a kept package falls in upload order: Kudu names it by its UTC upload time to the second
/// (`yyyyMMddHHmmss.zip`), and a second upload within that second gets a numbered suffix (`…-1.zip`), which
/// a plain text comparison would put *before* the unnumbered one (`-` sorts below `.`).
fn upload_order(name: &str) -> (&str, u64) {
    let stem = name.strip_suffix(".zip").unwrap_or(name);
    match stem.split_once('-') {
        Some((stamp, n)) => (stamp, n.parse::<u64>().map_or(0, |n| n + 1)),
        None => (stem, 0),
    }
}

impl Kudu {
    /// The kept packages and the active one; an empty folder (or none) when the slot never ran from a
    /// package.
    pub async fn site_packages(&self, cancel: &CancellationToken) -> Result<SitePackages> {
        let op = self.op("list SitePackages");
        let rsp = self
            .call(
                Call::new(&op, Method::Get, self.url(DIR, cancel).await?).accept(&[404]),
                cancel,
            )
            .await?;
        if u16::from(rsp.status()) == 404 {
            return Ok(SitePackages::default());
        }
        let entries: Vec<Entry> = parse_json(&op, &rsp)?;
        let mut zips: Vec<String> = entries
            .into_iter()
            .map(|e| e.name)
            .filter(|n| valid_name(n))
            .collect();
        zips.sort_by(|a, b| upload_order(b).cmp(&upload_order(a)));
        let op = self.op("read packagename.txt");
        let rsp = self
            .call(
                Call::new(
                    &op,
                    Method::Get,
                    self.url(&format!("{DIR}packagename.txt"), cancel).await?,
                )
                .accept(&[404]),
                cancel,
            )
            .await?;
        let active = (u16::from(rsp.status()) != 404)
            .then(|| String::from_utf8_lossy(rsp.body()).trim().to_owned())
            .filter(|n| !n.is_empty());
        Ok(SitePackages { active, zips })
    }

    /// The SHA-256 (lowercase hex) of one kept package, to verify it is the release's before the site
    /// runs it. Hashed as it streams: a package of any size costs one chunk of memory.
    pub async fn site_package_sha256(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        checked(name)?;
        use sha2::Digest as _;
        let op = self.op(&format!("hash SitePackages/{name}"));
        let call = Call::new(
            &op,
            Method::Get,
            self.url(&format!("{DIR}{name}"), cancel).await?,
        );
        let mut hasher = sha2::Sha256::new();
        self.get_streamed(call, cancel, |chunk| hasher.update(chunk))
            .await?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Points `packagename.txt` at a kept package; the site runs it after its next restart.
    pub async fn use_site_package(&self, name: &str, cancel: &CancellationToken) -> Result<()> {
        checked(name)?;
        let op = self.op(&format!("point packagename.txt at {name}"));
        // Kudu replaces an existing file only with If-Match.
        let call = Call::new(
            &op,
            Method::Put,
            self.url(&format!("{DIR}packagename.txt"), cancel).await?,
        )
        .header("if-match", "*".to_owned())
        .text(name.to_owned());
        self.call(call, cancel).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::{upload_order, valid_name};

    #[test]
    fn kept_packages_are_ordered_by_upload_time_then_suffix() {
        let mut names = vec![
            "20261205172801.zip",
            "20261205172801-1.zip",
            "20261205172759.zip",
            "20261205172801-10.zip",
            "20261205172801-2.zip",
        ];
        names.sort_by(|a, b| upload_order(b).cmp(&upload_order(a)));
        assert_eq!(
            names,
            [
                "20261205172801-10.zip",
                "20261205172801-2.zip",
                "20261205172801-1.zip",
                "20261205172801.zip",
                "20261205172759.zip"
            ]
        );
    }

    #[test]
    fn only_plain_zip_names_are_kept_packages() {
        assert!(valid_name("20261205154929.zip"));
        assert!(valid_name("20261205154929-1.zip"));
        for bad in ["packagename.txt", "../x.zip", "a/b.zip", ".zip", "x.zip\n"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
