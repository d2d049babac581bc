//! `vss-extension.json` has what the Marketplace and tfx require (fatal errors in tfx otherwise), and
//! every file it points at exists: the task contribution matches the staged task folder, the icon is a
//! PNG, the overview page is there.

use serde_json::Value;
use slot_release_tests::paths;

fn manifest() -> Value {
    let path = paths::workspace().join("vss-extension.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn required_marketplace_fields() {
    let m = manifest();
    assert_eq!(m["manifestVersion"], 1);
    let id = m["id"].as_str().unwrap_or_default();
    assert!(
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "id {id}"
    );
    assert!(m["publisher"].as_str().is_some_and(|p| !p.is_empty()));
    assert!(
        m["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty() && n.chars().count() <= 200)
    );
    assert!(
        m["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty() && d.chars().count() <= 200),
        "tfx limits the description to 200 characters"
    );
    let version = m["version"].as_str().unwrap_or_default();
    assert!(
        version.split('.').count() >= 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "version {version}"
    );
    let categories: Vec<&str> = m["categories"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(categories, ["Azure Pipelines"]);
    assert_eq!(m["targets"][0]["id"], "Microsoft.VisualStudio.Services");
    for link in ["home", "getstarted", "support", "license", "repository"] {
        assert!(
            m["links"][link]["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://")),
            "link {link}"
        );
    }
}

#[test]
fn contribution_files_icon_and_overview_exist() {
    let m = manifest();
    let root = paths::workspace();
    let contributions = m["contributions"].as_array().cloned().unwrap_or_default();
    assert_eq!(contributions.len(), 1);
    let task = &contributions[0];
    assert_eq!(task["type"], "ms.vss-distributed-task.task");
    assert_eq!(task["targets"][0], "ms.vss-distributed-task.tasks");
    let folder = task["properties"]["name"].as_str().unwrap_or_default();
    // The folder tfx packs is the one `cargo xtask dist` stages (task.json + index.js + bin/).
    let files: Vec<&str> = m["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        files.contains(&folder),
        "the task folder {folder} is not listed in files"
    );
    assert!(root.join("task").join("index.js").is_file());

    let icon = m["icons"]["default"].as_str().unwrap_or_default();
    let png = std::fs::read(root.join(icon)).unwrap_or_else(|e| panic!("{icon}: {e}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{icon} is not a PNG");
    let (width, height) = (
        u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
        u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
    );
    assert_eq!(
        (width, height),
        (128, 128),
        "the Marketplace wants a 128x128 icon"
    );
    assert!(
        files.iter().any(|f| icon.starts_with(f)),
        "the icon is not packaged"
    );

    let overview = m["content"]["details"]["path"].as_str().unwrap_or_default();
    let text =
        std::fs::read_to_string(root.join(overview)).unwrap_or_else(|e| panic!("{overview}: {e}"));
    assert!(
        text.contains("task: SlotRelease@1"),
        "the overview shows no YAML usage"
    );
    assert!(
        files.contains(&overview),
        "the overview page is not packaged"
    );
}

/// Every link of the manifest into this repository (`…/blob/main/<path>`: the license, the getting-started
/// page) names a file that exists, so the Marketplace page never links to a 404.
#[test]
fn links_into_the_repository_name_files_that_exist() {
    let text = serde_json::to_string(&manifest()).unwrap();
    let mut checked = 0;
    for part in text.split("/blob/main/").skip(1) {
        let path: String = part
            .chars()
            .take_while(|c| *c != '"' && *c != '#')
            .collect();
        assert!(
            paths::workspace().join(&path).is_file(),
            "vss-extension.json links to {path}, which is not in the repository"
        );
        checked += 1;
    }
    assert!(checked >= 2, "the license and the setup page are linked");
}
