use slot_release_config::*;
#[test]
fn scratch() {
    let mut names: Vec<_> = std::fs::read_dir("tests/broken").unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        match load_file(&p, &LoadOptions::default()) {
            Ok(_) => println!("!!! OK {}", p.display()),
            Err(d) => { println!("{d}"); for x in &d { println!("EXPECT {} {:?} {} {}", p.display(), x.code, x.line, x.column); } }
        }
    }
}
