//! The default host names App Service gives a site and its slots, in both styles it uses: classic
//! (`<site>[-<slot>].azurewebsites…`) and unique (`<site>-<hash>.<region>.azurewebsites…`), with the
//! shortening of labels longer than DNS allows. ARM bodies, the router, the TLS certificate and the
//! apps' `WEBSITE_HOSTNAME` all take their names from here, so they always agree.

use sha2::{Digest, Sha256};

use crate::DOMAIN;
use crate::seed::HostNameStyle;
use crate::state::PRODUCTION;

/// The longest DNS label (RFC 1035).
const DNS_LABEL: usize = 63;
/// Length of the hash in a unique default host name (`myapp-ds27dh7271aah175`).
const UNIQUE_HASH: usize = 16;
/// Microsoft's documented cut for long slot host names: the site name at 40 characters, the slot
/// name at 19, plus 4 random characters.
const SITE_CUT: usize = 40;
const SLOT_CUT: usize = 19;
const SUFFIX: usize = 4;

/// How one site names its hosts: the style, a key that stands in for App Service's randomness
/// (random per emulator start, so nothing can guess the hosts) and the region label.
#[derive(Debug, Clone)]
pub(crate) struct HostNaming {
    pub(crate) style: HostNameStyle,
    pub(crate) key: String,
    pub(crate) region: String,
}

/// The app host and the SCM (Kudu) host of one slot, without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotHosts {
    pub(crate) app: String,
    pub(crate) scm: String,
}

/// The region part of a unique host name: the location without spaces, lowercase, with the stamp
/// number (`East US` → `eastus-01`).
pub(crate) fn region_label(location: &str) -> String {
    let region: String = location
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    if region.is_empty() {
        "eastus-01".to_owned()
    } else {
        format!("{region}-01")
    }
}

/// `len` characters of `[a-z0-9]` derived from the key and the parts: stable for one emulator run
/// (a slot deleted and created again gets its host back, as App Service's name-label scopes do),
/// different across runs.
fn derived(key: &str, parts: &[&str], len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    for p in parts {
        hasher.update([0u8]);
        hasher.update(p.to_ascii_lowercase().as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(len)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn cut(s: &str, max: usize) -> &str {
    // Names are ASCII (checked by the seed and by slot creation), so a byte cut is a character cut.
    let s = &s[..s.len().min(max)];
    s.trim_end_matches('-')
}

/// The `<site>-<slot>` part of a label, shortened when longer than `room` the way the docs
/// describe: site at 40, slot at 19 (less if the label still would not fit).
fn site_slot(site: &str, slot: &str, room: usize) -> (String, bool) {
    let full = format!("{site}-{slot}");
    if full.len() <= room {
        return (full, false);
    }
    let site = cut(site, SITE_CUT);
    let slot_room = room.saturating_sub(site.len() + 1).min(SLOT_CUT);
    (format!("{site}-{}", cut(slot, slot_room)), true)
}

/// The first label of a slot's default host.
pub(crate) fn label(naming: &HostNaming, site: &str, slot: &str) -> String {
    let site = site.to_ascii_lowercase();
    let slot = slot.to_ascii_lowercase();
    let production = slot == PRODUCTION;
    match naming.style {
        HostNameStyle::Classic if production => site,
        HostNameStyle::Classic => {
            // A shortened label gets 4 random characters, so two long slots never collide.
            match site_slot(&site, &slot, DNS_LABEL) {
                (label, false) => label,
                (_, true) => {
                    let (short, _) = site_slot(&site, &slot, DNS_LABEL - SUFFIX);
                    format!("{short}{}", derived(&naming.key, &[&site, &slot], SUFFIX))
                }
            }
        }
        HostNameStyle::Unique => {
            let room = DNS_LABEL - UNIQUE_HASH - 1;
            let prefix = if production {
                cut(&site, room).to_owned()
            } else {
                site_slot(&site, &slot, room).0
            };
            format!(
                "{prefix}-{}",
                derived(&naming.key, &[&site, &slot], UNIQUE_HASH)
            )
        }
    }
}

/// The app and SCM hosts of a slot (no port).
pub(crate) fn slot_hosts(naming: &HostNaming, site: &str, slot: &str) -> SlotHosts {
    let label = label(naming, site, slot);
    match naming.style {
        HostNameStyle::Classic => SlotHosts {
            app: format!("{label}.azurewebsites.{DOMAIN}"),
            scm: format!("{label}.scm.azurewebsites.{DOMAIN}"),
        },
        HostNameStyle::Unique => SlotHosts {
            app: format!("{label}.{}.azurewebsites.{DOMAIN}", naming.region),
            scm: format!("{label}.scm.{}.azurewebsites.{DOMAIN}", naming.region),
        },
    }
}

/// The name of the instance (machine) a slot runs on, as App Service's log file names carry it,
/// e.g. `lw1sdlwk0A1B2C`.
pub(crate) fn instance_name(naming: &HostNaming, site: &str, slot: &str) -> String {
    format!(
        "lw1sdlwk{}",
        derived(&naming.key, &[site, slot, "instance"], 6).to_ascii_uppercase()
    )
}

/// The wildcard names the server certificate needs for hosts of this naming (beyond the classic
/// `*.azurewebsites…` ones every certificate has): a wildcard covers one label only.
pub(crate) fn certificate_names(naming: &HostNaming) -> Vec<String> {
    match naming.style {
        HostNameStyle::Classic => Vec::new(),
        HostNameStyle::Unique => vec![
            format!("*.{}.azurewebsites.{DOMAIN}", naming.region),
            format!("*.scm.{}.azurewebsites.{DOMAIN}", naming.region),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(style: HostNameStyle) -> HostNaming {
        HostNaming {
            style,
            key: "k".to_owned(),
            region: region_label("West Europe"),
        }
    }

    #[test]
    fn classic_hosts_follow_the_site_and_slot_names() {
        let n = naming(HostNameStyle::Classic);
        let h = slot_hosts(&n, "Shop", "production");
        assert_eq!(h.app, "shop.azurewebsites.emulator.test");
        assert_eq!(h.scm, "shop.scm.azurewebsites.emulator.test");
        assert_eq!(
            slot_hosts(&n, "shop", "staging").app,
            "shop-staging.azurewebsites.emulator.test"
        );
    }

    #[test]
    fn unique_hosts_carry_a_hash_and_the_region() {
        let n = naming(HostNameStyle::Unique);
        let prod = slot_hosts(&n, "shop", "production");
        let (label, rest) = prod.app.split_once('.').expect("a dotted host");
        assert_eq!(rest, "westeurope-01.azurewebsites.emulator.test");
        let hash = label.strip_prefix("shop-").expect("the site name first");
        assert_eq!(hash.len(), 16);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(
            prod.scm,
            format!("{label}.scm.westeurope-01.azurewebsites.emulator.test")
        );
        let staging = slot_hosts(&n, "shop", "staging");
        assert!(staging.app.starts_with("shop-staging-"), "{staging:?}");
        assert_ne!(staging.app, prod.app);
        // Another run (another key) gives other hosts: nothing can guess them.
        let other = HostNaming {
            key: "other".to_owned(),
            ..n.clone()
        };
        assert_ne!(slot_hosts(&other, "shop", "production"), prod);
        assert_eq!(
            slot_hosts(&n, "shop", "production"),
            prod,
            "stable in a run"
        );
    }

    #[test]
    fn long_slot_labels_are_shortened_to_fit_a_dns_label() {
        let site = "a-very-long-application-name-for-the-shop"; // 41 characters
        let slot = "integration-testing-environment"; // 31 characters
        for style in [HostNameStyle::Classic, HostNameStyle::Unique] {
            let n = naming(style);
            let l = label(&n, site, slot);
            assert!(l.len() <= 63, "{style:?}: {l} is {} long", l.len());
            assert!(
                l.starts_with("a-very-long-application-name-for-the-sho-"),
                "{style:?}: the site is cut at 40: {l}"
            );
            assert!(!l.contains("--"), "{l}");
        }
        let classic = label(&naming(HostNameStyle::Classic), site, slot);
        // Site at 40, the slot at 18 (19 would make 64), then 4 random characters.
        assert_eq!(classic.len(), 63, "{classic}");
        assert!(
            classic.starts_with("a-very-long-application-name-for-the-sho-integration-testin"),
            "{classic}"
        );
        // A label that fits is left alone.
        assert_eq!(
            label(&naming(HostNameStyle::Classic), "shop", "staging"),
            "shop-staging"
        );
    }

    #[test]
    fn regions_become_lowercase_labels_with_a_stamp() {
        assert_eq!(region_label("East US"), "eastus-01");
        assert_eq!(region_label("westeurope"), "westeurope-01");
        assert_eq!(region_label(""), "eastus-01");
    }
}
