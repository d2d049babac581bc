//! The system's trust roots on Linux, found where rustls-platform-verifier's Linux path finds them
//! (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else OpenSSL's probed bundle and directories) but
//! each distinct certificate decoded once.
//!
//! Why not the platform verifier's own loading: a start-up profile (issue 17) found half of the binary's
//! user time before its first request in decoding PEM, because the certificate directory holds every
//! certificate of the bundle again (Debian's `/etc/ssl/certs` has the bundle and ~145 single files), and
//! rustls-pki-types decodes base64 with a constant-time routine meant for private keys. Certificates are
//! public, so here each PEM block is compared as text first and only new ones are decoded. What is
//! trusted is unchanged: the same files, the same `CERTIFICATE` blocks, the same webpki verifier the
//! platform verifier builds on Linux (`tests` below and `crates/azure/tests/roots.rs` check it).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls::pki_types::CertificateDer;

use crate::http::SystemRoots as RootPaths;

/// Where the system's roots are, as rustls-native-certs decides: `SSL_CERT_DIR` or `SSL_CERT_FILE` when
/// either is set (then only those), else OpenSSL's probed locations.
pub(crate) fn located(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> RootPaths {
    let file = env("SSL_CERT_FILE").map(PathBuf::from);
    let dirs: Vec<PathBuf> = env("SSL_CERT_DIR")
        .map(|d| {
            std::env::split_paths(&d)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_some() || !dirs.is_empty() {
        return RootPaths { file, dirs };
    }
    let probed = openssl_probe::probe();
    RootPaths {
        file: probed.cert_file,
        dirs: probed.cert_dir,
    }
}

/// The certificates of every `CERTIFICATE` block in the bundle and in each directory's files (symlinks
/// followed, each file read once), each distinct one once. Unreadable files and broken blocks are
/// skipped, as the platform verifier skips them.
pub(crate) fn load(paths: &RootPaths) -> Vec<CertificateDer<'static>> {
    let mut loader = Loader::default();
    if let Some(file) = &paths.file {
        if let Ok(meta) = std::fs::metadata(file) {
            loader.first_visit(&meta);
        }
        loader.read_file(file);
    }
    for dir in &paths.dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `openssl rehash` fills these folders with symlinks: follow them.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_file() && loader.first_visit(&meta) {
                loader.read_file(&path);
            }
        }
    }
    loader.certs
}

#[derive(Default)]
struct Loader {
    /// `(device, inode)` of each file read.
    files: HashSet<(u64, u64)>,
    /// Each PEM body seen, whitespace removed: the same certificate in another file is not decoded again.
    bodies: HashSet<Vec<u8>>,
    certs: Vec<CertificateDer<'static>>,
}

impl Loader {
    fn first_visit(&mut self, meta: &std::fs::Metadata) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            self.files.insert((meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            true
        }
    }

    fn read_file(&mut self, path: &Path) {
        if let Ok(text) = std::fs::read(path) {
            self.add_pem(&text);
        }
    }

    fn add_pem(&mut self, text: &[u8]) {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let mut rest = text;
        while let Some(start) = find(rest, BEGIN) {
            let after = &rest[start + BEGIN.len()..];
            let Some(stop) = find(after, END) else {
                return;
            };
            let body: Vec<u8> = after[..stop]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            rest = &after[stop + END.len()..];
            if self.bodies.contains(&body) {
                continue;
            }
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&body) {
                self.certs.push(CertificateDer::from(der));
            }
            self.bodies.insert(body);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_of(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    fn cert(name: &str) -> Vec<u8> {
        rcgen::generate_simple_self_signed(vec![name.to_owned()])
            .map(|c| c.cert.der().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn the_bundle_and_the_folder_give_each_certificate_once_as_rustls_native_certs_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (cert("a.test"), cert("b.test"), cert("c.test"));
        let bundle = dir.path().join("bundle.pem");
        // A bundle with a key block and a broken block, which are skipped, as the platform verifier does.
        std::fs::write(
            &bundle,
            format!(
                "{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}\
                 -----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                pem_of(&a),
                pem_of(&b)
            ),
        )
        .unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        // The folder repeats the bundle's certificates and adds one of its own, behind a symlink.
        std::fs::write(certs.join("a.pem"), pem_of(&a)).unwrap();
        std::fs::write(certs.join("c.pem"), pem_of(&c)).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(certs.join("c.pem"), certs.join("1234abcd.0")).unwrap();
        std::fs::write(certs.join("notes.txt"), "no certificate here").unwrap();
        let paths = RootPaths {
            file: Some(bundle.clone()),
            dirs: vec![certs.clone()],
        };
        let mut ours: Vec<Vec<u8>> = load(&paths).iter().map(|c| c.to_vec()).collect();
        ours.sort();
        let mut expected = vec![a, b, c];
        expected.sort();
        assert_eq!(ours, expected);

        // The same set rustls-native-certs reads from the same paths.
        let theirs = rustls_native_certs::load_certs_from_paths(Some(&bundle), Some(&certs));
        let mut theirs: Vec<Vec<u8>> = theirs.certs.iter().map(|c| c.to_vec()).collect();
        theirs.sort();
        theirs.dedup();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn ssl_cert_file_or_dir_replace_the_probed_locations() {
        let env = |k: &str| match k {
            "SSL_CERT_FILE" => Some("/x/bundle.pem".into()),
            "SSL_CERT_DIR" => Some("/x/a:/x/b".into()),
            _ => None,
        };
        assert_eq!(
            located(&env),
            RootPaths {
                file: Some("/x/bundle.pem".into()),
                dirs: vec!["/x/a".into(), "/x/b".into()],
            }
        );
        let only_dir = |k: &str| (k == "SSL_CERT_DIR").then(|| "/x/a".into());
        assert_eq!(
            located(&only_dir),
            RootPaths {
                file: None,
                dirs: vec!["/x/a".into()],
            }
        );
    }
}
