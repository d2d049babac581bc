use slot_release_config::*;
#[test]
fn scratch() {
    for f in ["../../examples/python-webapp/release.yml", "../../examples/container-app/release.yml"] {
        match load_file(std::path::Path::new(f), &LoadOptions::default()) {
            Ok(l) => println!("OK {f} warnings={}", l.warnings),
            Err(d) => println!("ERR {f}\n{d}"),
        }
    }
    let texts = ["version: 1\napp:\n  name: x\n  resourceGroupp: y\n", "version: 1\napp:\n  name: x\n  name: y\n", "version: 2\n", "app:\n  name: x\n", "version: 1\napp: [1]\n"];
    for t in texts { if let Err(d) = load_str("t.yml", t, &LoadOptions::default()) { println!("{d}\n{:?}", d.as_slice().iter().map(|d| (&d.path, d.line, d.column)).collect::<Vec<_>>()); } }
}
