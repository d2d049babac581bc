//! What a built package offers App Service at startup and build time, read from the zip's central
//! directory (names only, never the entries' bytes, so memory stays flat however large the package is)
//! plus the root `package.json`, the one small file whose content the rules depend on.
//!
//! Where App Service's Python startup finds packages a package brings along is Oryx's rule (its startup
//! script generator, `src/startupscriptgenerator/src/python/scriptgenerator.go`, as App Service launches it
//! with `-virtualEnvName antenv`): the virtual environment `antenv` when the site has one, else the
//! folder `__oryx_packages__`, which it names in a `.pth` file and whose `bin` it puts on `PATH`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use slot_release_config::stack::PackageLayout;

use super::PackageError;

/// The folder of vendored Python packages App Service's Python startup puts on the path when the site
/// has no virtual environment (`pip install --target __oryx_packages__`).
pub const PYTHON_VENDORED_DIR: &str = "__oryx_packages__";

/// The virtual environment App Service's Python build creates and its startup uses.
pub const PYTHON_VENV_DIR: &str = "antenv";

/// Azure Functions' folder of vendored packages: App Service's web app startup does not read it.
pub const PYTHON_FUNCTIONS_DIR: &str = ".python_packages/lib/site-packages";

/// How many `requirements.txt` below the root the layout keeps (their paths name the fix).
const NESTED_REQUIREMENTS_KEPT: usize = 8;

/// `package.json` larger than this is not read (no real one is): the layout then knows no start script.
const PACKAGE_JSON_LIMIT: u64 = 1024 * 1024;

/// The facts the planner needs about a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFiles {
    /// Files at the root and one folder down (`/`-separated); deeper paths are not kept.
    shallow: BTreeSet<String>,
    /// `package.json`'s `main`, when the package holds that file.
    main: Option<String>,
    /// Whether `package.json` has `scripts.start`.
    start_script: bool,
    /// Whether `package.json` lists `dependencies`.
    pub node_dependencies: bool,
    /// Whether the package holds `node_modules/`.
    pub node_modules: bool,
    /// OneDeploy's `type=` when it is not `zip`: `war` or `jar`, from the package's extension.
    pub onedeploy_type: Option<&'static str>,
    /// Whether the package holds files under [`PYTHON_VENDORED_DIR`].
    pub python_vendored: bool,
    /// Whether the package holds a virtual environment's packages (`antenv/lib/`).
    pub python_venv: bool,
    /// Whether the package holds files under [`PYTHON_FUNCTIONS_DIR`].
    pub python_functions_dir: bool,
    /// `requirements.txt` one or two folders down (the app's own folder in a repository-shaped package),
    /// outside vendored folders; at most a few.
    pub nested_requirements: Vec<String>,
}

/// OneDeploy's `type=` for a package, from its extension: a `.war` goes to Tomcat as `app.war`, a
/// `.jar` to Java SE as `app.jar` (Kudu names them so and checks the slot's stack), anything else is a
/// zip unpacked into `wwwroot`. See docs/story-java.md.
pub fn onedeploy_type(package: &Path) -> &'static str {
    match package
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("war") => "war",
        Some("jar") => "jar",
        _ => "zip",
    }
}

impl PackageFiles {
    /// Reads the layout of the zip at `path`.
    pub fn from_zip(path: &Path) -> Result<Self, PackageError> {
        let unreadable = |e: std::io::Error| PackageError::Unreadable {
            path: path.display().to_string(),
            source: e,
        };
        let zip_err = |e: zip::result::ZipError| unreadable(std::io::Error::other(e));
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<Result<_, _>>()
            .map_err(zip_err)?;
        let package_json = match archive.by_name("package.json") {
            Ok(entry) if entry.size() <= PACKAGE_JSON_LIMIT => {
                let mut text = String::new();
                entry
                    .take(PACKAGE_JSON_LIMIT)
                    .read_to_string(&mut text)
                    .map_err(unreadable)?;
                Some(text)
            }
            _ => None,
        };
        let mut files = Self::from_names(names.iter().map(String::as_str), package_json.as_deref());
        files.onedeploy_type = Some(onedeploy_type(path)).filter(|t| *t != "zip");
        Ok(files)
    }

    /// The layout of a package with these entry names and root `package.json` text.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
        package_json: Option<&str>,
    ) -> Self {
        let json: Option<serde_json::Value> =
            package_json.and_then(|t| serde_json::from_str(t).ok());
        let wanted_main = json
            .as_ref()
            .and_then(|j| j["main"].as_str())
            .map(|m| m.trim_start_matches("./").to_owned());
        let mut files = PackageFiles {
            start_script: json.as_ref().is_some_and(|j| {
                j["scripts"]["start"]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty())
            }),
            node_dependencies: json
                .as_ref()
                .is_some_and(|j| j["dependencies"].as_object().is_some_and(|d| !d.is_empty())),
            ..PackageFiles::default()
        };
        let vendored = format!("{PYTHON_VENDORED_DIR}/");
        let venv = format!("{PYTHON_VENV_DIR}/lib/");
        let functions = format!("{PYTHON_FUNCTIONS_DIR}/");
        for name in names {
            if name.ends_with('/') {
                continue;
            }
            files.node_modules |= name.starts_with("node_modules/");
            files.python_vendored |= name.starts_with(&vendored);
            files.python_venv |= name.starts_with(&venv);
            files.python_functions_dir |= name.starts_with(&functions);
            let depth = name.matches('/').count();
            if (1..=2).contains(&depth)
                && name.ends_with("/requirements.txt")
                && files.nested_requirements.len() < NESTED_REQUIREMENTS_KEPT
                && !is_vendored(name)
            {
                files.nested_requirements.push(name.to_owned());
            }
            if wanted_main.as_deref() == Some(name) {
                files.main = Some(name.to_owned());
            }
            if name.matches('/').count() <= 1 {
                files.shallow.insert(name.to_owned());
            }
        }
        files
    }

    /// Whether the package holds `requirements.txt` at its root (what App Service's Python build reads).
    pub fn has_requirements(&self) -> bool {
        self.shallow.contains("requirements.txt")
    }

    /// Whether the package brings its Python packages along where App Service's startup finds them.
    pub fn python_packages_included(&self) -> bool {
        self.python_vendored || self.python_venv
    }
}

/// Whether an entry lies in a folder of installed packages, whose own files say nothing of the app's needs.
fn is_vendored(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or_default();
    top.starts_with('.') || [PYTHON_VENDORED_DIR, PYTHON_VENV_DIR, "node_modules"].contains(&top)
}

impl PackageLayout for PackageFiles {
    fn has_file(&self, path: &str) -> bool {
        self.shallow.contains(path)
    }

    fn one_folder_down(&self, name: &str) -> Vec<String> {
        self.shallow
            .iter()
            .filter(|p| p.split_once('/').is_some_and(|(_, file)| file == name))
            .cloned()
            .collect()
    }

    fn has_start_script(&self) -> bool {
        self.start_script
    }

    fn main_entry(&self) -> Option<String> {
        self.main.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onedeploy_type_follows_the_packages_extension() {
        assert_eq!(onedeploy_type(Path::new("out/app.WAR")), "war");
        assert_eq!(onedeploy_type(Path::new("target/demo-1.0.jar")), "jar");
        assert_eq!(onedeploy_type(Path::new("package.zip")), "zip");
        assert_eq!(onedeploy_type(Path::new("folder-package")), "zip");
    }

    #[test]
    fn shallow_files_vendored_folders_and_package_json_are_read() {
        let names = [
            "app.py",
            "mysite/wsgi.py",
            "a/b/c.py",
            ".python_packages/lib/site-packages/flask/__init__.py",
            "__oryx_packages__/flask/__init__.py",
            "node_modules/x/index.js",
            "node_modules/x/requirements.txt",
            "lib/start.js",
            "application/single_app/requirements.txt",
        ];
        let files = PackageFiles::from_names(
            names,
            Some(
                r#"{"main": "./lib/start.js", "scripts": {"start": "node x"}, "dependencies": {"x": "1"}}"#,
            ),
        );
        assert!(files.has_file("app.py") && files.has_file("mysite/wsgi.py"));
        assert!(!files.has_file("a/b/c.py"));
        assert_eq!(files.one_folder_down("wsgi.py"), vec!["mysite/wsgi.py"]);
        assert_eq!(files.main_entry().as_deref(), Some("lib/start.js"));
        assert!(files.has_start_script() && files.node_dependencies);
        assert!(files.node_modules && files.python_vendored && files.python_functions_dir);
        assert!(!files.python_venv && !files.has_requirements());
        assert_eq!(
            files.nested_requirements,
            ["application/single_app/requirements.txt"]
        );
        let bare = PackageFiles::from_names(["package.json"], Some(r#"{"scripts": {}}"#));
        assert!(!bare.has_start_script() && !bare.node_dependencies && bare.main_entry().is_none());
        assert!(!bare.python_packages_included() && !bare.python_functions_dir);
        let venv = PackageFiles::from_names(
            [
                "requirements.txt",
                "antenv/lib/python3.12/site-packages/flask/__init__.py",
            ],
            None,
        );
        assert!(venv.has_requirements() && venv.python_packages_included());
    }
}
