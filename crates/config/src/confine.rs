//! The package root, like the config file, must lie inside the pipeline's sources: a root such as
//! `../../../../etc/ssh`, or a folder that is a symbolic link pointing out of the checkout, would
//! otherwise be zipped and uploaded to the app.

use std::path::{Component, Path, PathBuf};

use crate::diagnostic::Diagnostics;
use crate::load::Loaded;
use crate::validate::Checker;

/// Checks that `package.root` (resolved against `base`, the folder holding the config, and through
/// every symbolic link) lies inside `sources` (`System.DefaultWorkingDirectory`). A root that does not
/// exist yet must not climb out with `..` either. The error is located at `package.root`.
pub fn check_package_root(loaded: &Loaded, base: &Path, sources: &Path) -> Result<(), Diagnostics> {
    let Some(package) = &loaded.config.package else {
        return Ok(());
    };
    // Sources that cannot be resolved are refused for the config file already.
    let Ok(sources) = sources.canonicalize() else {
        return Ok(());
    };
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    let written = base.join(&package.root);
    let (inside, through_link) = match written.canonicalize() {
        Ok(resolved) => {
            let lexical = lexically_inside(&written, &sources);
            let inside = resolved.starts_with(&sources);
            (inside, lexical && !inside)
        }
        Err(_) => (lexically_inside(&written, &sources), false),
    };
    if inside {
        return Ok(());
    }
    let mut problems = Diagnostics::new();
    let how = if through_link {
        " through a symbolic link"
    } else {
        ""
    };
    Checker {
        source: &loaded.source,
        out: &mut problems,
    }
    .error(
        "package.root",
        "package-root-outside-sources",
        format!(
            "the package root `{}` leads outside the pipeline's sources{how}; nothing was packaged",
            package.root
        ),
        "set `root:` to a folder inside the checked-out repository (System.DefaultWorkingDirectory), \
         relative to release.yml, without `..` climbing out of it or a symbolic link pointing out"
            .into(),
    );
    Err(problems)
}

/// Whether `path`, with `.` and `..` resolved by name only, lies inside `root`.
fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !normal.pop() {
                    return false;
                }
            }
            Component::CurDir => {}
            other => normal.push(other.as_os_str()),
        }
    }
    normal.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};

    fn loaded(root: &str) -> Loaded {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-webapp/release.yml"),
        )
        .unwrap_or_default()
        .replace("root: .", &format!("root: \"{root}\""));
        match load_str("release.yml", &text, &LoadOptions::default()) {
            Ok(loaded) => loaded,
            Err(problems) => panic!("{problems}"),
        }
    }

    #[test]
    fn roots_inside_the_sources_pass_and_others_are_located() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let sources = dir.path().join("s");
        let app = sources.join("deploy");
        std::fs::create_dir_all(app.join("src"))?;
        std::fs::create_dir_all(dir.path().join("outside"))?;
        for root in [".", "src", "../deploy/src", "not-built-yet"] {
            assert!(
                check_package_root(&loaded(root), &app, &sources).is_ok(),
                "{root}"
            );
        }
        for root in ["../../outside", "../../../../../../etc/ssh", "/etc"] {
            let problems = check_package_root(&loaded(root), &app, &sources)
                .err()
                .unwrap_or_default();
            let d = problems
                .iter()
                .next()
                .map(|d| (d.code, d.path.clone(), d.line));
            assert!(
                matches!(d, Some(("package-root-outside-sources", ref p, l)) if p == "package.root" && l > 0),
                "{root}: {problems}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside"), app.join("link"))?;
            let problems = check_package_root(&loaded("link"), &app, &sources)
                .err()
                .unwrap_or_default();
            assert!(
                problems.to_string().contains("through a symbolic link"),
                "{problems}"
            );
        }
        Ok(())
    }
}
