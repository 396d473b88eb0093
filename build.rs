//! Gives the shared library (the `cdylib`) its SONAME on Linux, `libabcast.so.MAJOR`,
//! so that C programs link against the versioned name (see docs/c-api.md, ABI).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libabcast.so.{major}");
    }
}
