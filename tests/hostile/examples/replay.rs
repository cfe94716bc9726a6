//! Runs one fuzz target body on input files, for reproducing a crash outside libFuzzer:
//!
//! ```sh
//! cargo run -p vecfmt-hostile --example replay -- <target> <file>...
//! ```

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay <target> <file>...");
    let body = vecfmt_hostile::fuzz::target(&target).unwrap_or_else(|| panic!("no target {target}"));
    for f in args {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        body(&data);
        println!("{f}: ok");
    }
}
